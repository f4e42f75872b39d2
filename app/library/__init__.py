"""The 苏科贷 enterprise library (备选企业库, SKD-E1): admission, updates, removal."""
