"""The ledger: every row that moves money, the balances summed over them, the invariants
`flask hrdfund check` verifies, and the seals and no-edit rules that keep the rows final.

It sits below every feature that moves money (pools, grants, disbursements), which import
its rows and balances; it imports none of them.
"""
