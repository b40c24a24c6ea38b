"""Reports: gather a tenant's risk data, lay it out as a document, render it to PDF or Excel, store
the file, and schedule reports that go out by e-mail.

Below the service layer and free of Ray: the report worker actor (`actors/report_worker.py`) hosts
`runner.run_one`, the service (`veles/services/reports.py`) queues and serves, and both meet in the
database. Charts and PDFs are pure functions of a `Document`, so the benchmark renders them
without a database.
"""
