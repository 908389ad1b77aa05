defmodule LsmIndex.Filter.Expr do
  @moduledoc """
  The WHERE expression trees `LsmIndex.Filter` takes beside SQL text, and their rendering to
  SQL text, which the Rust predicate engine then compiles like any clause (so a tree means
  exactly what its SQL means in PostgreSQL).

      where :: nil
             | {:and, [where]} | {:or, [where]} | {:not, where}
             | {:eq | :ne | :lt | :le | :gt | :ge, column, literal}
             | {:in, column, [literal]}
             | {:is_null, column}
             | {:like | :ilike, column, pattern}
             | {:const, true | false | nil}
             | {:sql, sql_text}

  `nil` matches every row; `{:sql, text}` is a condition as SQL text (over expressions:
  `lower(email) = 'x'`, `price * 2 > 10`), which `LsmIndex.Where.parse/2` returns for what
  the other nodes cannot say; `{:const, b}` is a constant `TRUE`, `FALSE` or `NULL` condition;
  `{:and, []}` is `TRUE`, `{:or, []}` `FALSE`, and `{:in, column, []}` is never true (unknown
  on a NULL column). `LsmIndex.Where.parse/2` builds these trees from SQL text (`NOT IN` is
  `{:not, {:in, ...}}`).

  ## Rendering (`to_sql!/1`)

  Columns become quoted identifiers (`"user_id"`, `""` inside); literals become SQL literals:
  integers as digits, floats as a quoted round-trip string (`'1.5'`; `:nan`, `:infinity`,
  `:neg_infinity` as `'NaN'`, `'Infinity'`, `'-Infinity'`), booleans `TRUE`/`FALSE`, `nil`
  as `NULL`, strings (and `LIKE` patterns) as `'...'` with `''` inside. A quoted literal is
  untyped in SQL: it takes its column's type, so a value of any type is written as its
  Postgres text (`{:eq, "owner", "A0EEBC99-…"}` compares a uuid, `{:eq, "user_id", "7"}` an
  integer). Which literals a column accepts, and what every node means, is the engine's
  (`LsmIndex.Where` lists the rules): it refuses what PostgreSQL refuses. Only the structure
  is checked here: a malformed node raises `ArgumentError` naming it.
  """

  @typedoc "A WHERE expression tree (see the module doc)."
  @type t ::
          nil
          | {:and, [t]}
          | {:or, [t]}
          | {:not, t}
          | {:eq | :ne | :lt | :le | :gt | :ge, String.t(), literal()}
          | {:in, String.t(), [literal()]}
          | {:is_null, String.t()}
          | {:like | :ilike, String.t(), String.t()}
          | {:const, boolean() | nil}
          | {:sql, String.t()}
  @typedoc "A literal of a tree: rendered as the SQL literal of the module doc."
  @type literal ::
          integer() | float() | :nan | :infinity | :neg_infinity | boolean() | nil | String.t()
  @typedoc "Where each leaf of a tree lies in its SQL text: `{first_byte, end_byte, leaf}`."
  @type spans :: [{non_neg_integer(), non_neg_integer(), t()}]

  @comparisons %{eq: " = ", ne: " <> ", lt: " < ", le: " <= ", gt: " > ", ge: " >= "}

  @doc """
  The SQL text of `where`, and where each leaf lies in it (to name the node an error of the
  engine points at). Raises `ArgumentError` naming a malformed node.

      iex> LsmIndex.Filter.Expr.to_sql!({:and, [{:eq, "a", 1}, {:or, [{:ilike, "s", "it's"}, {:const, nil}]}]})
      {~S|"a" = 1 AND ("s" ILIKE 'it''s' OR NULL)|,
       [{0, 7, {:eq, "a", 1}}, {13, 30, {:ilike, "s", "it's"}}, {34, 38, {:const, nil}}]}
  """
  @spec to_sql!(t) :: {String.t(), spans()}
  def to_sql!(where) do
    {io, _size, spans} = emit(where, :or, {[], 0, []})
    {IO.iodata_to_binary(io), Enum.reverse(spans)}
  end

  @doc "The leaf of `spans` (from `to_sql!/1`) that byte `position` lies in, or `nil`."
  @spec node_at(spans(), non_neg_integer()) :: t() | nil
  def node_at(spans, position) do
    Enum.find_value(spans, fn {first, stop, node} ->
      if position >= first and position < stop, do: node
    end)
  end

  # The state is {iodata, bytes so far, spans (reversed)}. `context` is the operator the node
  # is an operand of (:or, :and, :not): operator precedence (OR < AND < NOT) decides the
  # parentheses, so a tree nests no deeper in SQL than it is (the engine allows 64 levels).
  defp emit(nil, _context, st), do: put(st, "TRUE")
  defp emit({:and, []}, _context, st), do: put(st, "TRUE")
  defp emit({:or, []}, _context, st), do: put(st, "FALSE")

  defp emit({op, ws} = node, context, st) when op in [:and, :or] do
    unless proper_list?(ws), do: bad!(node, "expects a list of expressions")
    parens? = (op == :or and context != :or) or (op == :and and context == :not)
    separator = if op == :and, do: " AND ", else: " OR "
    st = if parens?, do: put(st, "("), else: st

    st =
      ws
      |> Enum.with_index()
      |> Enum.reduce(st, fn {w, i}, st ->
        st = if i > 0, do: put(st, separator), else: st
        emit(w, op, st)
      end)

    if parens?, do: put(st, ")"), else: st
  end

  defp emit({:not, w}, _context, st), do: emit(w, :not, put(st, "NOT "))

  defp emit(leaf, _context, {_io, at, _spans} = st) do
    sql = leaf!(leaf)
    {io, size, spans} = put(st, sql)
    {io, size, [{at, size, leaf} | spans]}
  end

  defp put({io, size, spans}, text), do: {[io | text], size + byte_size(text), spans}

  # The SQL of a leaf node.
  defp leaf!({:const, true}), do: "TRUE"
  defp leaf!({:const, false}), do: "FALSE"
  defp leaf!({:const, nil}), do: "NULL"
  defp leaf!({:sql, text}) when is_binary(text), do: "(" <> text <> ")"

  defp leaf!({op, column, lit} = node) when is_map_key(@comparisons, op),
    do: ident!(node, column) <> Map.fetch!(@comparisons, op) <> literal!(node, lit)

  defp leaf!({:in, column, []} = node),
    # no empty IN in SQL: unknown on NULL, else false, as the empty set means
    do: "(" <> ident!(node, column) <> " IS NULL AND NULL)"

  defp leaf!({:in, column, [_ | _] = lits} = node) do
    unless proper_list?(lits), do: bad!(node, "expects a list of literals")
    ident!(node, column) <> " IN (" <> Enum.map_join(lits, ", ", &literal!(node, &1)) <> ")"
  end

  defp leaf!({:in, _column, _lits} = node), do: bad!(node, "expects a list of literals")
  defp leaf!({:is_null, column} = node), do: ident!(node, column) <> " IS NULL"

  defp leaf!({op, column, pattern} = node) when op in [:like, :ilike] do
    unless is_binary(pattern), do: bad!(node, "expects a text pattern")
    keyword = if op == :like, do: " LIKE ", else: " ILIKE "
    ident!(node, column) <> keyword <> literal!(node, pattern)
  end

  defp leaf!(node), do: bad!(node, "is not a WHERE expression")

  defp ident!(node, column) when is_binary(column) do
    unless String.valid?(column), do: bad!(node, "has a column name that is not UTF-8")
    ~s(") <> String.replace(column, ~s("), ~s("")) <> ~s(")
  end

  defp ident!(node, column),
    do: bad!(node, "refers to column #{inspect(column)}, not a column name (a string)")

  defp literal!(_node, int) when is_integer(int), do: Integer.to_string(int)
  defp literal!(_node, f) when is_float(f), do: "'" <> Float.to_string(f) <> "'"
  defp literal!(_node, :nan), do: "'NaN'"
  defp literal!(_node, :infinity), do: "'Infinity'"
  defp literal!(_node, :neg_infinity), do: "'-Infinity'"
  defp literal!(_node, true), do: "TRUE"
  defp literal!(_node, false), do: "FALSE"
  defp literal!(_node, nil), do: "NULL"

  defp literal!(node, text) when is_binary(text) do
    unless String.valid?(text), do: bad!(node, "has literal #{inspect(text)}, not UTF-8 text")
    "'" <> String.replace(text, "'", "''") <> "'"
  end

  defp literal!(node, lit), do: bad!(node, "has literal #{inspect(lit)}, not a SQL literal")

  defp proper_list?([]), do: true
  defp proper_list?([_ | rest]), do: proper_list?(rest)
  defp proper_list?(_), do: false

  defp bad!(node, why), do: raise(ArgumentError, "WHERE node #{inspect(node)} #{why}")
end
