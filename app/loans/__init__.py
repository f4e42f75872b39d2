"""Loans: filing, servicing, days past due."""
