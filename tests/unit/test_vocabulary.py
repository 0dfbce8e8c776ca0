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
    assert member("order-1", task_key(2, 7)) == "order-1|2.7"
    assert split_member("a:b|2.7") == ("a:b", "2.7") and seq_of("2.7") == 7
    assert vocabulary.task_token(3) == "t:3" and vocabulary.event_token("Approval") == "e:approval"
    assert vocabulary.queue_name("billing") == "orchestrator.billing"
