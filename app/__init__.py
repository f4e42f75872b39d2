"""Risk-compensation fund ledger: 苏科贷 (SKD) and 连云港信保基金 (XB)."""
