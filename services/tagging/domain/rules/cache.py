"""Compiled predicates kept per process, keyed by tenant and owner (a tag rule or a segment)
and valid for one version of the rule, so an edited rule is recompiled on first use. A pure
memo: it holds no connection, only functions built from rules."""

from __future__ import annotations

from services.tagging.domain.rules.ast import Node
from services.tagging.domain.rules.compile import Predicate, compile_rule


class CompiledRules:
    def __init__(self, capacity: int = 10_000) -> None:
        self._compiled: dict[tuple[str, str], tuple[int, Predicate]] = {}
        self._capacity = capacity

    def predicate(self, tenant: str, owner_id: str, version: int, rule: Node) -> Predicate:
        key = (tenant, owner_id)
        cached = self._compiled.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        if len(self._compiled) >= self._capacity:
            self._compiled.clear()  # crude, but rules are few: a full cache means a leak
        predicate = compile_rule(rule)
        self._compiled[key] = (version, predicate)
        return predicate


#: One per process, shared by the consumers, sweeps and builds.
COMPILED = CompiledRules()
