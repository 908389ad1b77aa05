defmodule LsmIndex.Test.WhereTemplates do
  @moduledoc """
  Shapes made from a fixed list of parameterised clauses (`$1`, `$2`, ...) over the table of
  `LsmIndex.Test.WhereGenerator`, many per clause, for the PostgreSQL oracle's templates
  test: equalities (one template, a group per key), ranges and `BETWEEN` over every
  orderable column, `LIKE`/`ILIKE` and `lower`/`upper(col) LIKE` (the ordered indexes), and
  forms no index serves (`NOT LIKE`, `NOT BETWEEN`, an OR). Parameter values come from the
  generator's row-value pools and LIKE patterns: NULL now and then, a value with white space
  around it, and a value of another column (which PostgreSQL mostly refuses: both sides must
  refuse it then). A quarter of
  the shapes repeat the parameters of an earlier shape of their clause (identical shapes).

  Randomness comes from the process's `:rand` state (seed it first).
  """

  alias LsmIndex.Test.WhereGenerator

  # {clause, where each parameter's value comes from: a column's pool, or :pattern}
  @templates [
    # equality: one template, a group per key
    {"i8 = $1", ["i8"]},
    {"i8 = $1 AND s <> $2", ["i8", "s"]},
    {"i4 IN ($1, $2, $3)", ["i4", "i4", "i4"]},
    {"lower(s) = $1 AND f >= $2", ["s", "f"]},
    {"u = $1 AND e > $2", ["u", "e"]},
    # ranges over every orderable type
    {"i2 > $1 AND i2 < $2", ["i2", "i2"]},
    {"i4 BETWEEN $1 AND $2", ["i4", "i4"]},
    {"i8 >= $1", ["i8"]},
    {"f > $1 AND f <= $2", ["f", "f"]},
    {"f BETWEEN $1 AND $2", ["f", "f"]},
    {"r >= $1 AND r < $2", ["r", "r"]},
    {"n BETWEEN $1 AND $2", ["n", "n"]},
    {"n >= $1 AND n <= $1", ["n"]},
    {"date >= $1 AND date < $2", ["date", "date"]},
    {"date BETWEEN SYMMETRIC $1 AND $2", ["date", "date"]},
    {"tm BETWEEN $1 AND $2", ["tm", "tm"]},
    {"$1 <= tm AND tm < $2", ["tm", "tm"]},
    {"ts > $1 AND ts <= $2", ["ts", "ts"]},
    {"tz < $1", ["tz"]},
    {"tz >= $1 AND tz < $2", ["tz", "tz"]},
    {"s > $1 AND s < $2", ["s", "s"]},
    {"t BETWEEN $1 AND $2", ["t", "t"]},
    {"v >= $1", ["v"]},
    {"e > $1 AND e <= $2", ["e", "e"]},
    {"m BETWEEN $1 AND $2", ["m", "m"]},
    {"i4 NOT BETWEEN $1 AND $2", ["i4", "i4"]},
    # LIKE and ILIKE
    {"s LIKE $1", [:pattern]},
    {"t LIKE $1", [:pattern]},
    {"s ILIKE $1", [:pattern]},
    {"t NOT ILIKE $1", [:pattern]},
    {"lower(s) LIKE $1", [:pattern]},
    {"upper(s) LIKE $1", [:pattern]},
    {"s NOT LIKE $1", [:pattern]},
    {"s LIKE $1 AND i4 > $2", [:pattern, "i4"]},
    {"lower(t) LIKE $1 AND date < $2", [:pattern, "date"]},
    {"v ILIKE $1 OR f < $2", [:pattern, "f"]},
    {"b = $1 AND (s LIKE $2 OR n > $3)", ["b", :pattern, "n"]}
  ]

  # the columns a foreign value comes from
  @scalars ~w(i2 i4 i8 f b s u r n date tm ts tz e m)

  @typedoc "A shape: its id, its clause with `$n` and the parameters' values (nil: NULL)."
  @type shape :: {pos_integer(), String.t(), [String.t() | nil]}

  @doc "The parameterised clauses."
  @spec templates() :: [String.t()]
  def templates, do: Enum.map(@templates, &elem(&1, 0))

  @doc """
  `n` shapes (ids 1..n), each of a random clause. Option `gaps`: the known gaps (constructs
  of the oracle's `@known_gaps`) to draw too, default none: `:like_null_pattern` (NULL as a
  LIKE pattern), `:time_with_date` (a timestamp's text as a time), `:datetime_digits` (an
  integer's digits as a date, timestamp or time).
  """
  @spec shapes(pos_integer(), keyword()) :: [shape()]
  def shapes(n, opts \\ []) do
    gaps = Keyword.get(Keyword.validate!(opts, gaps: []), :gaps)

    {shapes, _} =
      Enum.map_reduce(1..n, %{}, fn id, earlier ->
        {sql, sources} = Enum.random(@templates)
        before = Map.get(earlier, sql, [])

        params =
          if before != [] and :rand.uniform() < 0.25,
            do: Enum.random(before),
            else: Enum.map(sources, &param(&1, gaps))

        {{id, sql, params}, Map.put(earlier, sql, [params | before])}
      end)

    shapes
  end

  defp param(:pattern, gaps) do
    if :like_null_pattern in gaps and :rand.uniform(100) <= 6,
      do: nil,
      else: WhereGenerator.like_pattern()
  end

  defp param(column, gaps) do
    case :rand.uniform(100) do
      k when k <= 6 -> nil
      k when k <= 9 -> column |> foreign(gaps) |> WhereGenerator.value()
      k when k <= 14 -> " #{WhereGenerator.value(column)} "
      _ -> WhereGenerator.value(column)
    end
  end

  # The column a foreign value for `column` comes from: not one whose values are a known gap
  # there unless `gaps` has it (an integer's digits as a date or time, a timestamp as a time).
  defp foreign(column, gaps) do
    left_out =
      if(column in ~w(date tm ts tz) and :datetime_digits not in gaps, do: ~w(i2 i4 i8), else: []) ++
        if column == "tm" and :time_with_date not in gaps, do: ~w(ts tz), else: []

    Enum.random(@scalars -- left_out)
  end

  @doc """
  The clause PostgreSQL runs for `sql` with `params`: each `$n` as an untyped quoted literal
  (typed by where it is used, as the router types a parameter), NULL for nil.
  """
  @spec substitute(String.t(), [String.t() | nil]) :: String.t()
  def substitute(sql, params) do
    Regex.replace(~r/\$(\d+)/, sql, fn _, k ->
      case Enum.at(params, String.to_integer(k) - 1) do
        nil -> "NULL"
        text -> "'" <> String.replace(text, "'", "''") <> "'"
      end
    end)
  end
end
