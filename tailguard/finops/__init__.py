"""FinOps: the ledger out as FOCUS cost-and-usage rows, and the provider's invoice against it.

- ``focus``: ``export_focus`` writes FOCUS 1.2 rows (Parquet or CSV) built by one DuckDB query;
- ``invoices``: the provider bills read as ``InvoiceLine`` (Anthropic cost report, OpenAI Costs API
  pages, a generic CSV);
- ``reconcile``: billed against attributed per day x provider (x model), with coverage.
"""
