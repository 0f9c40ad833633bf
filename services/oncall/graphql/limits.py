"""What a GraphQL request may ask for, checked before anything runs.

Four limits, all settings (`Settings.graphql_*`), checked in this order, each
cheaper than what it protects:

1. tokens (`graphql_max_tokens`): the parser stops at that many tokens
   (Strawberry's `MaxTokensLimiter` mechanism: graphql-core's `max_tokens`);
2. cost (`graphql_max_cost`): every selected field costs 1, a field that reads
   the database `DB_FIELD_WEIGHT`, multiplied by the size of the lists above
   it: the `limit` argument of a list that has one (its default when omitted,
   the largest allowed when it is a variable that is not an integer), the
   schema's own size for introspection lists, 1 for lists read from one row
   (layers, steps, targets, shifts of one range). Fragments count where they
   are spread. The walk stops as soon as the budget is exceeded, so its own
   work is bounded by the budget, whatever fragments a document nests;
3. depth (`graphql_max_depth`): Strawberry's `QueryDepthLimiter`;
4. aliases (`graphql_max_aliases`): Strawberry's `MaxAliasesLimiter`.

These run before graphql-core's own validation (whose rules are not all linear
in the document) and before any resolver, so a refused request never touches
the database. A refusal is a GraphQL error with `extensions.code`
`query_too_complex`, the limit and what was found, answered like any invalid
document (200 with `data: null`, as Strawberry answers validation errors).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
    validate,
)
from graphql.type import TypeNameMetaFieldDef
from graphql.validation import ASTValidationRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension

CODE = "query_too_complex"
_TOO_MANY_TOKENS = "tokens. Parsing aborted"
# a field whose resolver reads the database (one statement or more, and the resolver's
# work on what it read) weighs this many plain fields
DB_FIELD_WEIGHT = 10


@dataclass(frozen=True)
class Limits:
    max_tokens: int
    max_cost: int
    max_depth: int
    max_aliases: int
    statement_timeout_ms: int

    @classmethod
    def of(cls, settings: Any) -> Limits:
        return cls(
            max_tokens=settings.graphql_max_tokens,
            max_cost=settings.graphql_max_cost,
            max_depth=settings.graphql_max_depth,
            max_aliases=settings.graphql_max_aliases,
            statement_timeout_ms=settings.graphql_statement_timeout_ms,
        )


def refusal(message: str, limit: str, allowed: int, found: int | None = None) -> GraphQLError:
    extensions: dict[str, Any] = {"code": CODE, "limit": limit, "allowed": allowed}
    if found is not None:
        extensions["found"] = found
    return GraphQLError(message, extensions=extensions)


class _OverBudget(Exception):
    pass


class CostWalk:
    """The cost of a document's operation (see the module's docstring), stopping past
    `budget`. `db_fields` are the (type, field) pairs whose resolvers read the database."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any] | None,
        *,
        budget: int,
        db_fields: frozenset[tuple[str, str]],
        list_default: int,
    ) -> None:
        self.schema = schema
        self.variables = variables or {}
        self.budget = budget
        self.db_fields = db_fields
        self.list_default = list_default
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.operations = [
            d for d in document.definitions if isinstance(d, OperationDefinitionNode)
        ]
        self.cost = 0

    def total(self, operation_name: str | None) -> int | None:
        """The cost of the operation that would run (every operation's if none is named),
        or None once it exceeds the budget (`self.cost` then says how far it got)."""
        chosen = [
            op
            for op in self.operations
            if operation_name is None or (op.name is not None and op.name.value == operation_name)
        ]
        try:
            for op in chosen:
                root = self.schema.get_root_type(op.operation)
                self._selections(op.selection_set, root, 1, frozenset())
        except _OverBudget:
            return None
        return self.cost

    def _add(self, amount: int) -> None:
        self.cost += amount
        if self.cost > self.budget:
            raise _OverBudget

    def _selections(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType | None,
        multiplier: int,
        seen: frozenset[str],
    ) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self._field(selection, parent, multiplier, seen)
            elif isinstance(selection, InlineFragmentNode):
                self._add(1)  # a node walked, even when empty
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                self._selections(selection.selection_set, inner, multiplier, seen)
            elif isinstance(selection, FragmentSpreadNode):
                self._add(1)
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue  # graphql-core's validation reports it
                inner = self.schema.get_type(fragment.type_condition.name.value)
                self._selections(fragment.selection_set, inner, multiplier, seen | {name})

    def _field(
        self,
        node: FieldNode,
        parent: GraphQLNamedType | None,
        multiplier: int,
        seen: frozenset[str],
    ) -> None:
        name = node.name.value
        if parent is self.schema.query_type and name in ("__schema", "__type"):
            self._add(multiplier)
            found = self.schema if name == "__schema" else self._named_type(node)
            kind = "__Schema" if name == "__schema" else "__Type"
            if node.selection_set is not None and found is not None:
                self._introspection(node.selection_set, kind, [found], multiplier, seen)
            return
        definition = _field_definition(self.schema, parent, name)
        is_db = parent is not None and (parent.name, name) in self.db_fields
        self._add((DB_FIELD_WEIGHT if is_db else 1) * multiplier)
        if node.selection_set is None:
            return
        inner: GraphQLNamedType | None = None
        size = 1
        if definition is not None:
            inner = get_named_type(definition.type)
            if _is_list(definition.type):
                size = self._list_size(node, definition, name)
        self._selections(node.selection_set, inner, multiplier * size, seen)

    def _named_type(self, node: FieldNode) -> Any:
        for given in node.arguments or ():
            value = given.value
            if isinstance(value, StringValueNode):
                return self.schema.get_type(value.value)
            if isinstance(value, VariableNode):
                name = self.variables.get(value.name.value)
                return self.schema.get_type(name) if isinstance(name, str) else None
        return None

    def _introspection(
        self,
        selection_set: SelectionSetNode,
        kind: str,
        values: list[Any],
        multiplier: int,
        seen: frozenset[str],
    ) -> None:
        """Introspection counts what it would answer: one per field of each schema object
        it reaches (so the standard introspection query costs about its answer's size)."""
        for value in values:
            for field, inner_seen in self._fields_of(selection_set, seen):
                self._add(multiplier)
                child = _INTROSPECTION_CHILD.get((kind, field.name.value))
                if child is not None and field.selection_set is not None:
                    children = _introspection_children(self.schema, field.name.value, value)
                    self._introspection(
                        field.selection_set, child, children, multiplier, inner_seen
                    )

    def _fields_of(
        self, selection_set: SelectionSetNode, seen: frozenset[str]
    ) -> Iterator[tuple[FieldNode, frozenset[str]]]:
        """The fields of a selection set, fragments expanded (each spread costing 1)."""
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, seen
            elif isinstance(selection, InlineFragmentNode):
                self._add(1)
                yield from self._fields_of(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                self._add(1)
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:
                    yield from self._fields_of(fragment.selection_set, seen | {name})

    def _list_size(self, node: FieldNode, definition: Any, name: str) -> int:
        if "limit" in definition.args:
            return max(1, self._int_argument(node, "limit", definition.args["limit"]))
        return 1  # a list read from one row, bounded by what that row may hold

    def _int_argument(self, node: FieldNode, name: str, argument: Any) -> int:
        """The argument's value, at most `list_default` (which a value it cannot read yet,
        such as a variable that is not an integer, counts as)."""
        for given in node.arguments or ():
            if given.name.value != name:
                continue
            value = given.value
            if isinstance(value, IntValueNode):
                return _bounded(value.value, self.list_default)
            if isinstance(value, VariableNode):
                found = self.variables.get(value.name.value)
                if isinstance(found, int) and not isinstance(found, bool):
                    return min(found, self.list_default)
            return self.list_default
        default = argument.default_value
        return min(default, self.list_default) if isinstance(default, int) else self.list_default


def _bounded(text: str, worst: int) -> int:
    try:
        return min(int(text), worst)
    except ValueError:
        return worst


def _is_list(kind: Any) -> bool:
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, GraphQLList)


def _field_definition(schema: GraphQLSchema, parent: GraphQLNamedType | None, name: str) -> Any:
    if name == "__typename":
        return TypeNameMetaFieldDef
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return parent.fields.get(name)
    return None


_INTROSPECTION_CHILD = {
    ("__Schema", "types"): "__Type",
    ("__Schema", "queryType"): "__Type",
    ("__Schema", "mutationType"): "__Type",
    ("__Schema", "subscriptionType"): "__Type",
    ("__Schema", "directives"): "__Directive",
    ("__Type", "fields"): "__Field",
    ("__Type", "interfaces"): "__Type",
    ("__Type", "possibleTypes"): "__Type",
    ("__Type", "enumValues"): "__EnumValue",
    ("__Type", "inputFields"): "__InputValue",
    ("__Type", "ofType"): "__Type",
    ("__Field", "args"): "__InputValue",
    ("__Field", "type"): "__Type",
    ("__InputValue", "type"): "__Type",
    ("__Directive", "args"): "__InputValue",
}


def _introspection_children(schema: GraphQLSchema, field: str, value: Any) -> list[Any]:
    """The schema objects an introspection field answers for `value` (at most: deprecated
    ones included)."""
    if isinstance(value, GraphQLSchema):
        if field == "types":
            return list(value.type_map.values())
        if field == "directives":
            return list(value.directives)
        found = {
            "queryType": value.query_type,
            "mutationType": value.mutation_type,
            "subscriptionType": value.subscription_type,
        }.get(field)
        return [] if found is None else [found]
    if field == "ofType":
        inner = getattr(value, "of_type", None)
        return [] if inner is None else [inner]
    if field == "type":
        return [value.type]
    if field == "args":
        return list((getattr(value, "args", None) or {}).values())
    if field == "fields":
        is_output = isinstance(value, GraphQLObjectType | GraphQLInterfaceType)
        return list(value.fields.values()) if is_output else []
    if field == "inputFields":
        return list(value.fields.values()) if isinstance(value, GraphQLInputObjectType) else []
    if field == "interfaces":
        return list(getattr(value, "interfaces", None) or ())
    if field == "possibleTypes":
        is_abstract = isinstance(value, GraphQLInterfaceType | GraphQLUnionType)
        return list(schema.get_possible_types(value)) if is_abstract else []
    if field == "enumValues":
        return list(value.values.values()) if isinstance(value, GraphQLEnumType) else []
    return []


@functools.cache
def _default_limits() -> Limits:
    """The settings' defaults (a schema executed without the router's context)."""
    from services.common.settings import Settings

    return Limits.of(Settings.model_construct())


@functools.cache
def _rules(limit: str, allowed: int) -> list[type[ASTValidationRule]]:
    """Strawberry's validation rule for a limit (its extensions' rules, run here first)."""
    if limit == "depth":
        return QueryDepthLimiter(max_depth=allowed).validation_rules
    return MaxAliasesLimiter(max_alias_count=allowed).validation_rules


def check(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    limits: Limits,
    *,
    db_fields: frozenset[tuple[str, str]],
    list_default: int,
) -> list[GraphQLError]:
    """The limits a parsed document breaks (none: it may be validated and run)."""
    walk = CostWalk(
        schema,
        document,
        variables,
        budget=limits.max_cost,
        db_fields=db_fields,
        list_default=list_default,
    )
    if walk.total(operation_name) is None:
        return [
            refusal(
                f"query cost exceeds the budget of {limits.max_cost}: a field costs 1, "
                f"a field that reads the database {DB_FIELD_WEIGHT}, times the `limit` of "
                "each list above it; ask for fewer fields or smaller lists",
                "cost",
                limits.max_cost,
            )
        ]
    for limit, allowed in (("depth", limits.max_depth), ("aliases", limits.max_aliases)):
        errors = validate(schema, document, _rules(limit, allowed))
        for error in errors:
            error.extensions = {
                **(error.extensions or {}),
                "code": CODE,
                "limit": limit,
                "allowed": allowed,
            }
        if errors:
            return errors
    return []


class GraphQLLimits(SchemaExtension):
    """Applies the limits of the request's settings (read from the app per request, so that
    each app, and each test, runs with its own)."""

    db_fields: frozenset[tuple[str, str]] = frozenset()
    list_default: int = 1000

    def _limits(self) -> Limits:
        context = self.execution_context.context
        found = context.get("limits") if isinstance(context, dict) else None
        return found if isinstance(found, Limits) else _default_limits()

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self._limits().max_tokens
        yield

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            if _TOO_MANY_TOKENS in error.message:
                allowed = self._limits().max_tokens
                error.message = (
                    f"the document has more than {allowed} tokens (names, punctuation, "
                    "values); send a smaller one"
                )
                error.extensions = {"code": CODE, "limit": "tokens", "allowed": allowed}

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None and context.graphql_document is not None:
            errors = check(
                context.schema._schema,
                context.graphql_document,
                context.variables,
                context.operation_name,
                self._limits(),
                db_fields=self.db_fields,
                list_default=self.list_default,
            )
            if errors:
                # Strawberry then skips its validation and answers these errors
                context.pre_execution_errors = errors
        yield
