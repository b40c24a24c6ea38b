"""Billing with Stripe, as one domain: the catalog (`veles billing sync`), the subscription state
webhooks bring (`service`), dunning (`dunning`), the API routes (`routes`) and the CLI (`cli`).
The tables are in `models.billing` and on `models.tenancy.Tenant`, below every layer."""
