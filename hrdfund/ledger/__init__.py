"""The ledger: every row that moves money, and the seals and no-edit rules that keep the
rows final.

It sits below every feature that moves money (pools, grants, disbursements), which import
its rows; it imports none of them.
"""
