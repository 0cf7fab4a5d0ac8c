"""Ops: the policy and the gate, release pins, registry, promote, reconcile, package, signing, smoke, card, report.

It decides what runs where; it never imports serving/ (packaging and smoke tests talk to BentoML and HTTP).
"""
