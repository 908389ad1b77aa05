defmodule LsmIndex.Test.ReferenceWhere do
  @moduledoc """
  A brute-force WHERE evaluator in Elixir, independent of the Rust engine the product uses:
  the oracle of `test/lsm_index/filter_differential_test.exs` (the filter's evaluator and
  value parser before they moved to Rust, `LsmIndex.Filter.Predicate`). Trees in
  `LsmIndex.Filter.Expr`'s format with literals of the column's type (`normalize!/2` makes
  them canonical), rows of canonical values (`parse/2` reads Postgres text), SQL's
  three-valued logic.
  """

  @ranges %{
    int2: {-32_768, 32_767},
    int4: {-2_147_483_648, 2_147_483_647},
    int8: {-9_223_372_036_854_775_808, 9_223_372_036_854_775_807}
  }

  @comparisons [:eq, :ne, :lt, :le, :gt, :ge]

  @doc """
  Checks `where` against `columns` (`%{name => type}`) and returns it with canonical literals.
  Raises `ArgumentError` naming the offending node.
  """
  @spec normalize!(term(), map()) :: term()
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
  @spec columns(term()) :: MapSet.t(String.t())
  def columns(where), do: MapSet.new(collect_columns(where, []))

  defp collect_columns(nil, acc), do: acc

  defp collect_columns({op, ws}, acc) when op in [:and, :or],
    do: Enum.reduce(ws, acc, &collect_columns/2)

  defp collect_columns({:not, w}, acc), do: collect_columns(w, acc)
  defp collect_columns({:const, _}, acc), do: acc
  defp collect_columns({:is_null, c}, acc), do: [c | acc]
  defp collect_columns({_op, c, _lit}, acc), do: [c | acc]

  @doc "Whether `where` is true on `row` (unknown counts as not matching)."
  @spec matches?(term(), map()) :: boolean()
  def matches?(nil, _row), do: true
  def matches?(where, row), do: eval(where, row) == true

  @doc "Evaluates `where` on `row` with SQL three-valued logic: `true`, `false` or `nil`."
  @spec eval(term(), map()) :: boolean() | nil
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
      v -> holds?(op, compare(v, lit))
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
    case literal(type, lit) do
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

  @doc "The canonical value of an Elixir literal for a `type` column, or `:error`."
  @spec literal(atom(), term()) :: {:ok, term()} | :error
  # an integer literal is an int4/int8 in PostgreSQL: it compares with a smaller integer
  # column as it is (`int2_col > -32769` is valid SQL)
  def literal(type, v) when type in [:int2, :int4, :int8] and is_integer(v),
    do: in_range(:int8, v)

  def literal(:float8, v) when is_float(v), do: {:ok, fold_zero(v)}
  def literal(:float8, v) when is_integer(v), do: {:ok, fold_zero(v * 1.0)}
  def literal(:float8, v) when v in [:nan, :infinity, :neg_infinity], do: {:ok, v}
  def literal(:bool, v) when is_boolean(v), do: {:ok, v}
  def literal(type, v) when type in [:text, :varchar] and is_binary(v), do: {:ok, v}
  def literal(:uuid, v) when is_binary(v), do: uuid(v)
  def literal(_type, _v), do: :error

  @doc "The canonical value of Postgres text `text` in a `type` column, or `:error`."
  @spec parse(atom(), binary()) :: {:ok, term()} | :error
  # PostgreSQL's int, float and bool input functions skip surrounding white space.
  def parse(type, text) when type in [:int2, :int4, :int8] do
    case Integer.parse(trim_space(text)) do
      {int, ""} -> in_range(type, int)
      _ -> :error
    end
  end

  def parse(:float8, text), do: parse_float(String.downcase(trim_space(text)))
  def parse(type, text) when type in [:text, :varchar], do: {:ok, text}
  def parse(:uuid, text), do: uuid(text)

  def parse(:bool, text), do: parse_bool(String.downcase(trim_space(text), :ascii))

  @doc "Orders two non-null canonical values of one type as Postgres does."
  @spec compare(term(), term()) :: :lt | :eq | :gt
  def compare(a, b) when is_number(a) and is_number(b), do: cmp(a, b)
  def compare(a, b) when is_atom(a) or is_atom(b), do: cmp(rank(a), rank(b))
  def compare(a, b), do: cmp(a, b)

  defp cmp(a, b) when a < b, do: :lt
  defp cmp(a, b) when a > b, do: :gt
  defp cmp(_a, _b), do: :eq

  # booleans are atoms too: false < true, as in Postgres
  defp rank(false), do: {0, 0}
  defp rank(true), do: {0, 1}
  defp rank(:neg_infinity), do: {-1, 0}
  defp rank(:infinity), do: {1, 0}
  defp rank(:nan), do: {2, 0}
  defp rank(number), do: {0, number}

  # As PostgreSQL's boolin reads it: true/false/yes/no or any prefix of one, on, off or of,
  # 1, 0 (the Rust engine's `parse_bool`).
  defp parse_bool(""), do: :error
  defp parse_bool(w) when w in ["1", "on"], do: {:ok, true}
  defp parse_bool(w) when w in ["0", "of", "off"], do: {:ok, false}

  defp parse_bool(w) do
    cond do
      String.starts_with?("true", w) or String.starts_with?("yes", w) -> {:ok, true}
      String.starts_with?("false", w) or String.starts_with?("no", w) -> {:ok, false}
      true -> :error
    end
  end

  defp in_range(type, int) do
    {min, max} = Map.fetch!(@ranges, type)
    if int >= min and int <= max, do: {:ok, int}, else: :error
  end

  defp fold_zero(f) when f == 0.0, do: 0.0
  defp fold_zero(f), do: f

  defp parse_float("nan"), do: {:ok, :nan}
  defp parse_float(inf) when inf in ["infinity", "+infinity", "inf", "+inf"], do: {:ok, :infinity}
  defp parse_float(inf) when inf in ["-infinity", "-inf"], do: {:ok, :neg_infinity}
  defp parse_float("." <> _ = text), do: parse_float("0" <> text)
  defp parse_float("-." <> rest), do: parse_float("-0." <> rest)

  defp parse_float(text) do
    # Float.parse stops at the first character it cannot use and refuses an overflow; a
    # nonzero text that underflows to zero is out of range too (as in PostgreSQL's float8in).
    case Float.parse(text) do
      {f, ""} when f == 0.0 ->
        if nonzero_mantissa?(text), do: :error, else: {:ok, 0.0}

      {f, ""} ->
        {:ok, f}

      _ ->
        :error
    end
  end

  defp nonzero_mantissa?(text) do
    text |> String.split(["e", "E"]) |> hd() |> String.match?(~r/[1-9]/)
  end

  # the white space C's isspace knows, which PostgreSQL's input functions skip
  @c_space ~c" \t\n\r\v\f"

  defp trim_space(text), do: text |> trim_leading_space() |> trim_trailing_space()

  defp trim_leading_space(<<c, rest::binary>>) when c in @c_space, do: trim_leading_space(rest)
  defp trim_leading_space(text), do: text

  defp trim_trailing_space(text) do
    size = byte_size(text)

    if size > 0 and :binary.last(text) in @c_space,
      do: trim_trailing_space(binary_part(text, 0, size - 1)),
      else: text
  end

  # As PostgreSQL's uuid_in reads it: 32 hex digits, optionally in braces, with an optional
  # hyphen after any group of four digits (but not at the end).
  defp uuid("{" <> rest) do
    case uuid_digits(rest, 0, []) do
      {:ok, hex, "}"} -> hex_uuid(hex)
      _ -> :error
    end
  end

  defp uuid(text) do
    case uuid_digits(text, 0, []) do
      {:ok, hex, ""} -> hex_uuid(hex)
      _ -> :error
    end
  end

  defp uuid_digits(rest, 32, acc), do: {:ok, acc |> Enum.reverse() |> IO.iodata_to_binary(), rest}

  defp uuid_digits(<<c, rest::binary>>, n, acc)
       when c in ?0..?9 or c in ?a..?f or c in ?A..?F do
    case rest do
      "-" <> after_hyphen when rem(n, 4) == 3 and n < 31 ->
        uuid_digits(after_hyphen, n + 1, [c | acc])

      _ ->
        uuid_digits(rest, n + 1, [c | acc])
    end
  end

  defp uuid_digits(_rest, _n, _acc), do: :error

  defp hex_uuid(hex) do
    lower = String.downcase(hex)

    if byte_size(lower) == 32 and hex?(lower) do
      <<a::binary-8, b::binary-4, c::binary-4, d::binary-4, e::binary-12>> = lower
      {:ok, Enum.join([a, b, c, d, e], "-")}
    else
      :error
    end
  end

  defp hex?(<<c, rest::binary>>) when c in ?0..?9 or c in ?a..?f, do: hex?(rest)
  defp hex?(<<>>), do: true
  defp hex?(_), do: false
end
