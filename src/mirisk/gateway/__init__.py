"""The serving gateway: a model behind API keys, output policies, query budgets, an audit
log and a probe detector, so the safeguards an audit recommends are the ones enforced."""
