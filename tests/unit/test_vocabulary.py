"""The vocabulary is the one place statuses are spelled: no other module (Python or Lua) writes one."""

import re
from pathlib import Path

from orchestrator.core import vocabulary
from orchestrator.core.vocabulary import STATUSES, TERMINAL, Status, member, seq_of, split_member, task_key

PACKAGE = Path(vocabulary.__file__).resolve().parent.parent
SPELLED = (*(s.value for s in Status), vocabulary.UNKNOWN_STATUS, vocabulary.NOT_CREATED, vocabulary.PURGED,
           vocabulary.CONTINUED_AS_NEW)
LITERAL = re.compile("[\"'](" + "|".join(SPELLED) + ")[\"']")


def test_no_status_literal_outside_the_vocabulary():
    sources = [p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".lua") and p.name != "vocabulary.py"]
    assert len(sources) > 40  # the whole package was searched
    found = [f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}"
             for p in sources for n, line in enumerate(p.read_text().splitlines(), 1) if LITERAL.search(line)]
    assert found == []


def test_terminal_statuses_and_formats():
    assert TERMINAL == {"COMPLETED", "FAILED", "TERMINATED"}
    assert [s.value for s in STATUSES] == ["RUNNING", "COMPLETED", "FAILED", "TERMINATED", "PENDING", "SUSPENDED"]
    assert Status.FAILED == "FAILED" and f"{Status.FAILED}" == "FAILED"
    assert member("order-1", task_key("0a1b2c3d4e5f", 2, 7)) == "order-1|0a1b2c3d4e5f.2.7"
    assert split_member("a:b|0a1b2c3d4e5f.2.7") == ("a:b", "0a1b2c3d4e5f.2.7") and seq_of("0a1b2c3d4e5f.2.7") == 7
    assert vocabulary.task_token("0a1b2c3d4e5f.2.7") == "t:0a1b2c3d4e5f.2.7"
    assert vocabulary.token_task_key("t:0a1b2c3d4e5f.2.7") == "0a1b2c3d4e5f.2.7"
    assert vocabulary.event_token("Approval") == "e:approval"
    assert vocabulary.belongs_to("0a1b.2.7", "0a1b", 2) and not vocabulary.belongs_to("0a1b.2.7", "ffff", 2)
    assert not vocabulary.belongs_to("0a1b.2.7", "0a1b", 3)


def test_runs_without_id_keep_the_formats_they_were_written_with():
    """Instances created before run ids: keys ``<gen>.<seq>`` and tokens ``t:<seq>``, as their stored waits."""
    assert task_key("", 2, 7) == "2.7" and vocabulary.task_token("2.7") == "t:7"
    assert vocabulary.run_of("2.7") == "" and vocabulary.generation_of("2.7") == "2"
    assert vocabulary.token_task_key("t:7") is None and vocabulary.token_task_key("e:go") is None


def test_task_keys_are_matched_whole_and_in_ascii_digits():
    assert vocabulary.is_task_key("0a1b.0.1") and vocabulary.is_task_key("0.1")
    for bad in ("0.1\n", "0.\u0661", "x.0.1", "0a1b.0.1.2", "", "start"):
        assert not vocabulary.is_task_key(bad), bad
    assert vocabulary.queue_name("billing") == "orchestrator.billing"
