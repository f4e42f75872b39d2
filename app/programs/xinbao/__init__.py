"""信保基金 (XB) rules: eligibility, products, shares, limits, deadlines."""
