"""A two-application example: an orders app whose workflow uses an inventory app's activity and
child workflow. Each app is its own worker pool with its own Celery queue::

    orchestrator worker workers.multi_app.inventory --app-id inventory
    orchestrator worker workers.multi_app.orders --app-id orders

Neither module imports the other: the orders workflow names the inventory app's activity and
workflow by their registered names and routes them with ``app_id="inventory"``.
"""
