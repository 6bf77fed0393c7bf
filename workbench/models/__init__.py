"""Predictive models on the customer 360 profile: churn, purchase propensity and
customer lifetime value, with time-based validation and honest baselines."""
