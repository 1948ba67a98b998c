"""The rule language of segment rules and tag rules. Pure: no I/O.

- `ast`: the rule tree (All / Any / Not over attribute, tag, behaviour and segment conditions);
- `catalogue`: the fields a rule may test and the operators each type allows;
- `validate`: every problem of a rule, with its path, raised as one `RuleProblems`;
- `facts`: `CustomerFacts`, what tagging knows of one customer;
- `evaluate`: the reference meaning of a rule (`matches`) and the missing-value semantics;
- `compile`: the same meaning as a precomputed predicate (`compile_rule`), for the engine;
- `describe`: a one-line description for the console.
"""
