defmodule LsmIndex.Test.WhereGenerator.Arrays do
  @moduledoc """
  The array part of `LsmIndex.Test.WhereGenerator`: random array values (NULL elements,
  empty arrays, duplicates, elements that need quoting) and random array clauses over the
  oracle table's array columns `ia int4[]`, `la int8[]` and `ta text[]`, built from the
  constructs below (each records itself with the generator's `use!/1`).
  """

  alias LsmIndex.Test.WhereGenerator, as: Gen

  # the generator's helpers (called at run time: it uses this module's constructs when it
  # is compiled)
  defp on?(construct), do: Gen.on?(construct)
  defp use!(construct), do: Gen.use!(construct)
  defp col(name), do: Gen.col(name)
  defp op, do: Gen.op()
  defp kw(word), do: Gen.kw(word)

  @constructs [
    # `ia @> '{1,NULL}'`, `'{1}' <@ la`, `ta && ARRAY['a', NULL]`, `ia @> ia`, array `=`,
    # `<`, IN, IS DISTINCT FROM with `'{…}'`, `ARRAY[…]`, `'{…}'::int8[]`, `CAST(… AS t[])`
    :array_ops,
    # `i4 = ANY('{1,2}')` (an IN list: indexed), `t <> ALL(ta)`, `3 = SOME(ia)`,
    # `i8 >= ALL(ARRAY[1, 2])`, `NULL = ANY(ia)`, `i4 = ANY('{}')`
    :array_any,
    # `cardinality(ia) = 2`, `array_length(la, 1) > 1`, `ta::text LIKE '%"%'`,
    # `ia::int8[] = la`, `coalesce(ia, '{}') @> '{1}'`, `ARRAY[i4, 1] <@ ia`
    :array_func,
    # what the planner folds (`(ia @> NULL) IS NULL OR 1 / 0 = 1`) and what it does not
    # (`(i4 = ANY('{}')) AND 1 / 0 = 1` is refused)
    :array_fold,
    # refused by both: `ia = la`, `la @> ARRAY[1]`, `i4 = ANY(ta)`, `ia @> '{x}'`, ...
    :array_mismatch,
    # `ia = '{{1,2}}'`: PostgreSQL reads multi-dimensional array text, we refuse it (a
    # known gap)
    :array_multidim
  ]

  @doc "The array constructs."
  @spec constructs() :: [atom()]
  def constructs, do: @constructs

  @doc "Whether some array construct is on."
  @spec any_on?() :: boolean()
  def any_on?, do: Enum.any?(@constructs, &on?/1)

  ## Values

  @ints %{
    int4: ~w(-1 0 1 2 3 7 42 2147483647 -2147483648),
    int8: ~w(-1 0 1 2 3 7 42 9223372036854775807 3000000000)
  }
  @texts ["a", "b", "a b", "", "NULL", "null", ~S(with "quote"), "x,y", "\\", "{", "σας", " x "]

  @small ~w(-1 0 1 2 3 7 42)

  @doc "A random array of `element`s in PostgreSQL's array input form."
  @spec value(atom()) :: String.t()
  def value(element), do: value(element, pool(element))

  defp value(_element, pool) do
    n = Enum.random([0, 0, 1, 1, 2, 3, 4])
    items = if n == 0, do: [], else: for(_ <- 1..n, do: item(pool))
    # duplicates
    items = if items != [] and :rand.uniform() < 0.2, do: items ++ [hd(items)], else: items
    spaced? = :rand.uniform() < 0.2
    sep = if spaced?, do: " , ", else: ","
    "{" <> Enum.join(items, sep) <> "}"
  end

  defp item(pool) do
    if :rand.uniform() < 0.2,
      do: Enum.random(["NULL", "null"]),
      else: pool |> Enum.random() |> element_text()
  end

  defp pool(:text), do: @texts
  defp pool(int), do: Map.fetch!(@ints, int)

  # An element's text: quoted (`"` and `\` escaped) where it must be, sometimes anyway.
  defp element_text(v) do
    must? =
      v == "" or String.upcase(v) == "NULL" or
        String.contains?(v, [" ", "\"", "\\", "{", "}", ","])

    if must? or :rand.uniform() < 0.2,
      do: ~s(") <> String.replace(v, ["\\", "\""], &("\\" <> &1)) <> ~s("),
      else: v
  end

  # An array literal of `element`s (the SQL text, untyped): `'{1,NULL}'`; of small integers
  # (`small`), one that any integer column's type reads.
  defp untyped(element, small \\ false)
  defp untyped(:text, _small), do: quote_sql(value(:text))
  defp untyped(element, true), do: quote_sql(value(element, @small))
  defp untyped(element, false), do: quote_sql(value(element))

  ## Clauses

  @array_cols [{"ia", :int4}, {"la", :int8}, {"ta", :text}]
  @op_words ["@>", "<@", "&&"]

  @doc "A random array clause over array column `name` of `element`s."
  @spec atom(String.t(), atom()) :: iodata()
  def atom(name, element) do
    options =
      for {c, f} <- [
            {:array_ops, fn -> ops(name, element) end},
            {:array_ops, fn -> ops(name, element) end},
            {:array_ops, fn -> ops(name, element) end},
            {:array_any, fn -> any(name, element) end},
            {:array_any, fn -> any(name, element) end},
            {:array_any, fn -> any(name, element) end},
            {:array_func, fn -> func(name, element) end},
            {:array_func, fn -> func(name, element) end},
            {:array_fold, fn -> fold() end},
            {:array_multidim,
             fn -> [col(name), Enum.random([" = ", " @> "]), quote_sql("{{1,2},{3,NULL}}")] end},
            {:is_null, fn -> [col(name), " ", kw(Enum.random(["IS NULL", "IS NOT NULL"]))] end}
          ],
          on?(c),
          do: {c, f}

    # refused forms are rarer: one refused atom refuses its whole clause
    options =
      if on?(:array_mismatch) and :rand.uniform() < 0.03,
        do: [{:array_mismatch, &mismatch/0}],
        else: options

    {c, f} = Enum.random(options)
    use!(c)
    f.()
  end

  # An array of `element`s in one of the forms SQL writes it in, of the column's type
  # (`small`: an untyped one of small integers).
  defp literal(element, small \\ false) do
    pg = if element == :text, do: "text", else: Atom.to_string(element)

    case :rand.uniform(6) do
      n when n <= 3 ->
        untyped(element, small)

      4 ->
        [untyped(element), "::", Enum.random(["#{pg}[]", "#{pg} ARRAY", "\"_#{pg}\""])]

      5 ->
        ["CAST(", untyped(element), " AS #{pg}[])"]

      6 ->
        items = for _ <- 0..Enum.random(0..2), do: ctor_item(element)
        cast = if element == :int4 and :rand.uniform() < 0.5, do: "", else: "::#{pg}[]"
        ["ARRAY[", Enum.intersperse(items, ", "), "]", cast]
    end
  end

  defp ctor_item(element) do
    cond do
      :rand.uniform() < 0.15 -> "NULL"
      element == :text -> quote_sql(Enum.random(@texts))
      true -> Enum.random(Map.fetch!(@ints, :int4))
    end
  end

  defp ops(name, element) do
    case :rand.uniform(7) do
      n when n <= 3 ->
        [col(name), " ", Enum.random(@op_words), " ", literal(element)]

      4 ->
        [literal(element), " ", Enum.random(@op_words), " ", col(name)]

      5 ->
        [col(name), " ", Enum.random(@op_words ++ ["=", "<>", "<"]), " ", col(name)]

      6 ->
        [col(name), " ", op(), " ", literal(element)]

      7 ->
        Enum.random([
          [col(name), " ", kw("IN"), " (", literal(element), ", ", untyped(element), ")"],
          [col(name), " ", kw("IS DISTINCT FROM"), " ", literal(element)],
          [col(name), " ", kw("IS NOT DISTINCT FROM"), " ", untyped(element)]
        ])
    end
  end

  @scalars %{int4: ["i2", "i4", "i8"], int8: ["i2", "i4", "i8"], text: ["s", "t", "v"]}

  defp any(name, element) do
    scalar = col(Enum.random(@scalars[element]))
    quantifier = kw(Enum.random(["ANY", "ANY", "SOME", "ALL"]))
    o = Enum.random(["=", "=", "=", "<>", "<", ">="])

    value =
      cond do
        :rand.uniform() < 0.1 -> "NULL"
        element == :text -> quote_sql(Enum.random(@texts))
        true -> Enum.random(Map.fetch!(@ints, :int4))
      end

    case :rand.uniform(5) do
      n when n <= 2 -> [scalar, " ", o, " ", quantifier, "(", literal(element, true), ")"]
      3 -> [scalar, " ", o, " ", quantifier, " (", col(name), ")"]
      4 -> [value, " ", o, " ", quantifier, "(", col(name), ")"]
      5 -> [scalar, " = ", kw("ANY"), "(", Enum.random(["'{}'", untyped(element, true)]), ")"]
    end
  end

  defp func(name, element) do
    n = "#{Enum.random(0..3)}"

    Enum.random([
      ["cardinality(", col(name), ") ", op(), " ", n],
      ["array_length(", col(name), ", 1) ", op(), " ", n],
      ["array_length(", col(name), ", ", Enum.random(["2", "0", "'1'"]), ") IS NULL"],
      ["coalesce(cardinality(", col(name), "), -1) = -1"],
      [col(name), "::text = ", quote_sql(value(element))],
      [col(name), "::text LIKE ", quote_sql(Enum.random(["%NULL%", ~S(%"%), "{}", "{1%"]))],
      ["coalesce(", col(name), ", '{}') @> ", untyped(element)],
      ["CAST(", col(name), " AS text) IS NOT NULL"]
      | typed_funcs(element)
    ])
  end

  defp typed_funcs(:text),
    do: [
      ["ARRAY[", col("t"), ", 'a'] && ", col("ta")],
      [col("ta"), "::text[] <@ ", col("ta")]
    ]

  defp typed_funcs(_int),
    do: [
      ["ARRAY[", col("i4"), ", 1] <@ ", col("ia")],
      [col("ia"), "::int8[] ", Enum.random(["=", "&&", "@>"]), " ", col("la")],
      [col("la"), "::text[] && ", col("ta")],
      ["cardinality(ARRAY[", col("i4"), ", ", col("i8"), "]) = 2"],
      [col("ia"), " = ARRAY[]::int4[]"]
    ]

  defp fold do
    clause =
      if :rand.uniform() < 0.7,
        do: Enum.random(folded()),
        else: Enum.random(not_folded())

    ["(", clause, ")"]
  end

  # Constants the planner computes, after which it stops: `1 / 0` is never computed.
  defp folded do
    [
      ["(", col("ia"), " @> NULL) IS NULL OR 1 / 0 = 1"],
      ["cardinality(NULL::int4[]) IS NULL OR 1 / 0 = 1"],
      ["(1 = ANY('{}'::int4[])) AND 1 / 0 = 1"],
      ["(NULL = ANY('{2}'::int4[])) IS NULL OR 1 / 0 = 1"],
      ["(ARRAY[1, 2] @> ARRAY[1]) OR 1 / 0 = 1"]
    ]
  end

  # `x op ANY(array)` reading a column is not folded, even with a NULL or empty array: the
  # planner computes `1 / 0` and fails (refused by both).
  defp not_folded do
    [
      ["(", col("i4"), " = ANY(NULL::int4[])) IS NULL OR 1 / 0 = 1"],
      ["(", col("i4"), " = ANY('{NULL}')) IS NULL OR 1 / 0 = 1"],
      ["(", col("i4"), " = ANY('{}')) AND 1 / 0 = 1"],
      ["(NULL::int4 = ANY(", col("ia"), ")) IS NULL OR 1 / 0 = 1"]
    ]
  end

  defp mismatch do
    Enum.random([
      [col("ia"), " = ", col("la")],
      [col("la"), " @> ARRAY[1]"],
      [col("ta"), " && ARRAY[1]"],
      [col("ia"), " = 1"],
      [col("i4"), " = ANY(", col("ta"), ")"],
      [col("i4"), " = ANY(1)"],
      [col("ia"), " @> '{x}'"],
      ["cardinality('{1}') = 1"],
      ["'{1}' @> '{1}'"]
    ])
  end

  @doc "The array columns of the oracle table: `{name, element type}`."
  @spec columns() :: [{String.t(), atom()}]
  def columns, do: @array_cols

  defp quote_sql(text), do: "'" <> String.replace(text, "'", "''") <> "'"
end
