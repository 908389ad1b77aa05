defmodule LsmIndex.Filter.Expr do
  @moduledoc """
  The WHERE expression tree of a shape (the data; `LsmIndex.Where` is the SQL parser that
  builds it): validation against a table's columns, the choice of the indexable conjunct, and
  evaluation with SQL three-valued logic.

      where :: nil
             | {:and, [where]} | {:or, [where]} | {:not, where}
             | {:eq | :ne | :lt | :le | :gt | :ge, column, literal}
             | {:in, column, [literal]}
             | {:is_null, column}
             | {:like | :ilike, column, pattern}
             | {:const, true | false | nil}

  `nil` matches every row. `:like`/`:ilike` apply to text columns: in the pattern `%` matches
  any run of characters, `_` one character, and `\\` makes the next one literal; `:ilike`
  compares lower-cased. `{:const, b}` is a constant `TRUE`, `FALSE` or `NULL` condition.
  `LsmIndex.Where.parse/2` builds these trees from SQL text (`NOT IN` is
  `{:not, {:in, ...}}`). Literals are Elixir values of the column's type (see
  `LsmIndex.Filter.ColumnType`); `nil` as a literal is SQL `NULL`, so a comparison with it is
  unknown. Evaluation returns `true`, `false` or `nil` (unknown); a row belongs to a shape only
  when its WHERE is `true`.
  """

  alias LsmIndex.Filter.ColumnType

  @typedoc "A WHERE expression tree (see the module doc)."
  @type t ::
          nil
          | {:and, [t]}
          | {:or, [t]}
          | {:not, t}
          | {:eq | :ne | :lt | :le | :gt | :ge, String.t(), term()}
          | {:in, String.t(), [term()]}
          | {:is_null, String.t()}
          | {:like | :ilike, String.t(), String.t()}
          | {:const, boolean() | nil}
  @typedoc "How a shape is found: through an equality index on `column`, or by a table scan."
  @type plan ::
          {:index, String.t(), [ColumnType.value()], residual :: t}
          | {:scan, t}
  @typedoc "A parsed row: column => canonical value, `nil` for NULL, missing or unparseable."
  @type row :: %{optional(String.t()) => ColumnType.value() | nil}

  @comparisons [:eq, :ne, :lt, :le, :gt, :ge]

  @doc """
  Checks `where` against `columns` (`%{name => type}`) and returns it with canonical literals.
  Raises `ArgumentError` naming the offending node.
  """
  @spec normalize!(t, %{String.t() => ColumnType.t()}) :: t
  def normalize!(nil, _columns), do: nil

  def normalize!({op, list} = node, columns) when op in [:and, :or] do
    unless is_list(list), do: bad!(node, "expects a list of expressions")
    {op, Enum.map(list, &normalize!(&1, columns))}
  end

  def normalize!({:not, w}, columns), do: {:not, normalize!(w, columns)}
  def normalize!({:const, b} = node, _columns) when b in [true, false, nil], do: node

  def normalize!({op, column, pattern} = node, columns) when op in [:like, :ilike] do
    unless type!(node, column, columns) in [:text, :varchar],
      do: bad!(node, "applies to a non-text column")

    unless is_binary(pattern), do: bad!(node, "expects a text pattern")
    node
  end

  def normalize!({op, column, lit} = node, columns) when op in @comparisons do
    {op, column, literal!(node, type!(node, column, columns), lit)}
  end

  def normalize!({:in, column, lits} = node, columns) do
    type = type!(node, column, columns)
    unless is_list(lits), do: bad!(node, "expects a list of literals")
    {:in, column, Enum.map(lits, &literal!(node, type, &1))}
  end

  def normalize!({:is_null, column} = node, columns) do
    type!(node, column, columns)
    {:is_null, column}
  end

  def normalize!(node, _columns), do: bad!(node, "is not a WHERE expression")

  @doc "The columns `where` refers to."
  @spec columns(t) :: MapSet.t(String.t())
  def columns(where), do: MapSet.new(collect_columns(where, []))

  defp collect_columns(nil, acc), do: acc

  defp collect_columns({op, ws}, acc) when op in [:and, :or],
    do: Enum.reduce(ws, acc, &collect_columns/2)

  defp collect_columns({:not, w}, acc), do: collect_columns(w, acc)
  defp collect_columns({:const, _}, acc), do: acc
  defp collect_columns({:is_null, c}, acc), do: [c | acc]
  defp collect_columns({_op, c, _lit}, acc), do: [c | acc]

  @doc """
  Picks the equality conjunct that serves `where` from an index: a top-level `eq`, `in`, or
  `or` of those on one column, the one with the fewest values. The rest is the residual,
  evaluated on the index's candidates. Without such a conjunct the shape is scanned.
  """
  @spec plan(t) :: plan
  def plan(where) do
    conjuncts = flatten_and(where)

    candidates =
      for {c, i} <- Enum.with_index(conjuncts),
          {column, values} <- [equality(c)],
          values != [],
          do: {length(values), i, column, values}

    case Enum.min(candidates, fn -> nil end) do
      nil ->
        {:scan, where}

      {_n, i, column, values} ->
        {:index, column, values, conjoin(List.delete_at(conjuncts, i))}
    end
  end

  defp flatten_and(nil), do: []
  defp flatten_and({:and, ws}), do: Enum.flat_map(ws, &flatten_and/1)
  defp flatten_and(w), do: [w]

  defp conjoin([]), do: nil
  defp conjoin([w]), do: w
  defp conjoin(ws), do: {:and, ws}

  # {column, distinct non-null values} when `w` is true exactly when column equals one of them
  defp equality({:eq, column, lit}), do: {column, Enum.reject([lit], &is_nil/1)}
  defp equality({:in, column, lits}), do: {column, distinct(lits)}

  defp equality({:or, [_ | _] = ws}) do
    parts = Enum.map(ws, &equality/1)

    case Enum.uniq_by(parts, &elem(&1, 0)) do
      [{column, _}] when column != nil ->
        {column, parts |> Enum.flat_map(&elem(&1, 1)) |> distinct()}

      _ ->
        {nil, []}
    end
  end

  defp equality(_), do: {nil, []}

  # Literals of one column share a type, so `==` (what usort dedups by) is `===` here.
  defp distinct(lits), do: lits |> Enum.reject(&is_nil/1) |> :lists.usort()

  @doc "Whether `where` is true on `row` (unknown counts as not matching)."
  @spec matches?(t, row) :: boolean()
  def matches?(nil, _row), do: true
  def matches?(where, row), do: eval(where, row) == true

  @doc "Evaluates `where` on `row` with SQL three-valued logic: `true`, `false` or `nil`."
  @spec eval(t, row) :: boolean() | nil
  def eval(nil, _row), do: true
  def eval({:and, ws}, row), do: eval_and(ws, row, true)
  def eval({:or, ws}, row), do: eval_or(ws, row, false)

  def eval({:not, w}, row) do
    case eval(w, row) do
      nil -> nil
      b -> not b
    end
  end

  def eval({:is_null, column}, row), do: Map.get(row, column) == nil
  def eval({:const, b}, _row), do: b

  def eval({op, column, pattern}, row) when op in [:like, :ilike] do
    case Map.get(row, column) do
      nil -> nil
      text when op == :like -> like?(text, pattern)
      text -> like?(fold_case(text), fold_case(pattern))
    end
  end

  def eval({:in, column, lits}, row) do
    case Map.get(row, column) do
      nil -> nil
      v -> if v in lits, do: true, else: if(nil in lits, do: nil, else: false)
    end
  end

  def eval({op, column, lit}, row) do
    case Map.get(row, column) do
      nil -> nil
      _ when lit == nil -> nil
      v -> holds?(op, ColumnType.compare(v, lit))
    end
  end

  # false wins over unknown, unknown over true
  defp eval_and([], _row, acc), do: acc

  defp eval_and([w | ws], row, acc) do
    case eval(w, row) do
      false -> false
      nil -> eval_and(ws, row, nil)
      true -> eval_and(ws, row, acc)
    end
  end

  # true wins over unknown, unknown over false
  defp eval_or([], _row, acc), do: acc

  defp eval_or([w | ws], row, acc) do
    case eval(w, row) do
      true -> true
      nil -> eval_or(ws, row, nil)
      false -> eval_or(ws, row, acc)
    end
  end

  # SQL LIKE over code points: greedy, with one backtrack point (the last `%`), as the Rust
  # matcher does; O(text x pattern) at worst.
  defp like?(text, pattern), do: like_match(chars(text), like_tokens(chars(pattern)), nil)

  defp chars(bin) do
    case :unicode.characters_to_list(bin) do
      list when is_list(list) -> list
      _ -> :binary.bin_to_list(bin)
    end
  end

  defp like_tokens([]), do: []
  defp like_tokens([?% | rest]), do: [:any | like_tokens(rest)]
  defp like_tokens([?_ | rest]), do: [:one | like_tokens(rest)]
  defp like_tokens([?\\, c | rest]), do: [{:char, c} | like_tokens(rest)]
  defp like_tokens([c | rest]), do: [{:char, c} | like_tokens(rest)]

  # star: {pattern after the last %, text where that % started matching}
  defp like_match([], pat, _star), do: Enum.all?(pat, &(&1 == :any))
  defp like_match(text, [:any | pat], _star), do: like_match(text, pat, {pat, text})
  defp like_match([_ | text], [:one | pat], star), do: like_match(text, pat, star)
  defp like_match([c | text], [{:char, c} | pat], star), do: like_match(text, pat, star)
  defp like_match(_text, _pat, {pat, [_ | text]}), do: like_match(text, pat, {pat, text})
  defp like_match(_text, _pat, _star), do: false

  defp holds?(:eq, order), do: order == :eq
  defp holds?(:ne, order), do: order != :eq
  defp holds?(:lt, order), do: order == :lt
  defp holds?(:le, order), do: order != :gt
  defp holds?(:gt, order), do: order == :gt
  defp holds?(:ge, order), do: order != :lt

  defp type!(node, column, columns) do
    case columns do
      %{^column => type} -> type
      _ -> bad!(node, "refers to unknown column #{inspect(column)}")
    end
  end

  defp literal!(_node, _type, nil), do: nil

  defp literal!(node, type, lit) do
    case ColumnType.literal(type, lit) do
      {:ok, v} -> v
      :error -> bad!(node, "has literal #{inspect(lit)}, not a valid #{type}")
    end
  end

  defp bad!(node, why), do: raise(ArgumentError, "WHERE node #{inspect(node)} #{why}")

  # ILIKE's case folding as PostgreSQL does it under a UTF-8 LC_CTYPE: one character to one
  # character, so a final "Σ" is "σ" (never "ς") and "İ" is "i" (the letter of its two-character
  # lower case); the same rule as the Rust engine's `fold_char`.
  defp fold_case(text) do
    if ascii?(text),
      do: String.downcase(text, :ascii),
      else: for(<<c::utf8 <- text>>, into: "", do: fold_char(c))
  end

  defp fold_char(c) when c < 128, do: String.downcase(<<c::utf8>>, :ascii)

  defp fold_char(c) do
    <<first::utf8, _::binary>> = String.downcase(<<c::utf8>>)
    <<first::utf8>>
  end

  defp ascii?(<<c, rest::binary>>) when c < 128, do: ascii?(rest)
  defp ascii?(<<>>), do: true
  defp ascii?(_), do: false
end
