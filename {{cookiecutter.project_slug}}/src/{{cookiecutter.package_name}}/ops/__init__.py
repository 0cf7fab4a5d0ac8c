"""Ops: the policy and the gate, release pins, registry, promote, reconcile, package, signing, smoke, card, report.

By job: policy.py (the rules as data), gate/ (evidence, rules, decision, rendering), pins.py (read and write
release pins), registry.py (MLflow registry queries), promotion.py (register, promote, record a build),
reconcile.py (aliases and overlays follow the pins), verify.py (`verify-pin`), report.py (the PR report),
publish.py (report comment, promotion request, approval label) over codehost/ (GitHub, GitLab).

It decides what runs where; it never imports serving/ (packaging and smoke tests talk to BentoML and HTTP).
"""
