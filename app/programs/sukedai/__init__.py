"""苏科贷 (SKD) rules: products, eligibility, shares, caps, quarter-end (SPEC §3)."""
