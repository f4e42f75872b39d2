"""The banks' monthly loan-level status files (XB-Rep) and their reconciliation against
the service's books."""
