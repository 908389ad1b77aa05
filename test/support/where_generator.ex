defmodule LsmIndex.Test.WhereGenerator do
  @moduledoc """
  Random rows and random WHERE clauses of today's grammar (`LsmIndex.Where`) over one table
  with a column of every supported type (the date column is named `date`, like its type;
  `e` is of the named enum type `prio`, `m` of an enum known to us by its labels only), for
  the PostgreSQL oracle test. Clauses are built
  from named constructs (`constructs/0`); a generator configuration is the set of constructs
  it may use, so a construct whose semantics differ from PostgreSQL's can be left out, and
  each clause comes back with the constructs it used.

  Randomness comes from the process's `:rand` state (seed it first).
  """

  alias LsmIndex.Test.WhereGenerator.Arrays

  @prio ["low", "high", "medium", "urgent"]
  @columns [
    {"id", :int8},
    {"i2", :int2},
    {"i4", :int4},
    {"i8", :int8},
    {"f", :float8},
    {"b", :bool},
    {"s", :text},
    {"t", :text},
    {"v", :varchar},
    {"u", :uuid},
    {"r", :float4},
    {"n", :numeric},
    {"date", :date},
    {"tm", :time},
    {"ts", :timestamp},
    {"tz", :timestamptz},
    {"e", {:enum, "prio", @prio}},
    {"m", {:enum, ["sad", "ok", "happy"]}},
    {"ia", {:array, :int4}},
    {"la", {:array, :int8}},
    {"ta", {:array, :text}}
  ]
  # PostgreSQL's name of the enum we know by its labels only (clauses never name it)
  @unnamed_enum "mood"

  # Conditions whose constant part PostgreSQL's planner fails to compute (none reads a
  # column where it fails: that would fail on rows instead), and ones its parser refuses.
  @plan_errors [
    "1 / 0 = 1",
    "i2 = -32768::int2",
    "f < 1e400",
    "i4 = 99999999999::int4",
    "abs((-2147483647 - 1)::int4) = 1",
    "'abc'::text::int4 = 1",
    "ts = '5874897-12-31'::date::timestamp",
    "n > 1 / 0.0"
  ]
  @parse_errors ["i4 = 'abc'", "e = 'nope'", "date = DATE 'x'"]

  # What each construct generates (the comment is the example).
  @constructs [
                # structure
                :and_or_not,
                # `a = 1 OR b AND NOT c`: no parentheses, precedence decides
                :bare_precedence,
                # TRUE, FALSE, NULL as conditions
                :const,
                # `aNd`, `Is NoT nUlL`
                :keyword_case,
                # tabs and newlines between tokens
                :whitespace,
                # `i4>=5`, `s<>'a'`: no spaces around operators
                :tight,
                # `i4!=-1` (needs :tight)
                :bang_minus,
                # `"i4" = 1`
                :quoted_ident,
                # predicates
                :is_null,
                :cmp,
                # `5 < i4`
                :literal_left,
                # `'5'::int4 < i4`
                :cast_left,
                :in,
                :not_in,
                # `i4 IN (1, NULL)`, `i4 = NULL`
                :null_literal,
                # `s = 5`, `b = 1`, `u = 'x'`: refused by both
                :type_mismatch,
                :like,
                :not_like,
                :ilike,
                # `\%`, `\_`, `\\` and `\b` in LIKE patterns
                :like_escapes,
                # `s LIKE 'ab\'`
                :like_trailing_backslash,
                # ILIKE over text with `İ` or `Σ` (the `s` column, not `t`), or such patterns
                :ilike_fold,
                # `b`, `NOT b`
                :bare_bool,
                # integer columns
                :int_plain,
                # `i4 = '5'`
                :int_string,
                # `i4 = ' 5 '`
                :int_string_space,
                # `i4 = '+5'`
                :int_string_sign,
                # `i2 > -32769`
                :int_out_of_range,
                # `i4 <= 42.5`, `id IN (144.0)`, `1e2`
                :int_decimal,
                # `i4 = 5::int2`, `'5'::int8` (in range of both)
                :int_cast,
                # `i2 = 40000::int4` (in the cast's range, not the column's)
                :int_cast_wide,
                # `::integer`, `::smallint`, `::bigint`, `::int`
                :cast_alias,
                # `i2 = -32768::int2` (the cast binds before the minus)
                :neg_cast_min,
                # `i4 != 7::float8`
                :float_cast_on_int,
                # `::numeric`, `::varchar`, `::double precision`, `::real`
                :unsupported_cast,
                # float8
                :float_plain,
                # `'NaN'`, `'Infinity'::float8`, `'-Infinity'`
                :float_special,
                # `'inf'`, `'nan'`, `'+Infinity'`
                :float_string_variants,
                # `' 1.5 '`
                :float_string_space,
                # `f < 1e400`
                :float_out_of_range,
                # `f >= 5.`, `1.e2`
                :float_trailing_point,
                # `4.9e-324`, 40 significant digits
                :float_precision,
                # bool
                :bool_plain,
                # `'t'`, `'yes'`, `'OFF'`, `'1'`
                :bool_words,
                # `'tr'`, `'fal'`, `'ye'`
                :bool_prefix,
                # `' 1 '`, `' t'`
                :bool_space,
                # `'t'::bool`, `true::boolean`
                :bool_cast,
                # `1::bool`, `2::bool`
                :int_to_bool_cast,
                # text
                :text_plain,
                # `'x'::text`
                :text_cast,
                # `E'a\\b'`
                :e_string,
                # uuid
                :uuid_plain,
                :uuid_upper,
                # 32 hex digits without hyphens
                :uuid_nohyphen,
                # `'{a0eebc99-…}'`
                :uuid_braces,
                # `'a0eebc999c0b4ef8-bb6d-…'`: hyphens after other groups of 4
                :uuid_grouping,
                # `'…'::uuid`
                :uuid_cast,
                # float4: `r = 1.1` (compared in float8), `r = '1.1'` (a float4), `r IN (1.1, 2)` (float4)
                :float4,
                # numeric: `n = 1.50`, `n > '1e20'`, `'NaN'`, `1.5::numeric`
                :numeric,
                # date: `d >= '2024-01-01'`, `'infinity'`, `'0044-03-15 BC'`, `'epoch'`
                :date,
                # time: `tm < '10:30'`, `'24:00'`
                :time,
                # timestamp: `ts > '2024-01-01'`, `'2024-01-01T10:30'`, an offset (ignored)
                :timestamp,
                # timestamptz: `tz >= '2024-01-01 10:30:00+05:30'`, `'…Z'`, no offset (UTC)
                :timestamptz,
                # `ts = '2024-01-01'::date`, `tz = '…'::timestamp`, `ts < '…'::timestamptz`,
                # `ts < '5874897-12-31'::date` (past the last timestamp: no cast, no error)
                :datetime_cast,
                # `tz IN ('5874897-12-31'::date, …)`: cast to timestamptz, which PostgreSQL computes while
                # executing, not planning (a known gap)
                :date_past_timestamps_list,
                # enum: `e = 'urgent'`, `e > 'high'` (declaration order), `m = 'sad'` (labels only)
                :enum,
                # typed literals `type 'text'` of every type: `i4 = int4 ' 5 '`, `date = DATE '…'`,
                # `r < real '1.1'`, `tz > TIMESTAMP WITH TIME ZONE '…'`, `e = prio 'low'`
                :typed_literal,
                # the named enum `prio`: `e = 'low'::prio`, `e::text::prio = e`, `CAST('high' AS prio)`;
                # refused by both: `e = m`, `e = 'nope'::prio`, `i4::prio`
                :named_enum,
                # constants PostgreSQL's planner never computes: `FALSE AND 1 / 0 = 1`, `TRUE OR …`,
                # `coalesce(NULL::int4, 1, 1 / 0)`, `1 BETWEEN 2 AND 1 / 0`, `(i4 + NULL) IS NULL OR …`;
                # and ones it does (refused by both): `1 / 0 = 1 AND FALSE`, `NULL AND …`
                :lazy_fold,
                # expressions (none raises an error on the generated rows):
                # `lower(s) = 'ab'`, `upper(t) LIKE 'A%'`, `lower(s) IN (…)`
                :func_text,
                # `length(s) > 2`, `char_length(t) = 0`
                :length,
                # `abs(f) > 1.5`, `abs(n) = 1.5`
                :abs,
                # `i2 * 2 > 100`, `i4 / 2 = 3`, `i4 % 7 = 1`, `n * 2 >= 3`, `f + 1 > 2`, `r - 1 < 0`
                :arith,
                # `d + 1 = '2024-01-02'`, `d - 7 < '2024-01-01'`
                :date_arith,
                # `i4::text LIKE '1%'`, `n::text = '1.50'`, `b::text = 'true'`, `tz::date = …`
                :col_cast,
                # `CAST(i4 AS text) = '7'`
                :cast_syntax,
                # `s || 'x' = 'abx'`, `t || i4 LIKE 'a%'`
                :concat,
                # `lower(s) IS NULL`, `(i4 + 1) IS NOT NULL`
                :is_null_expr,
                # `(i4 > 5) IS TRUE`, `(s LIKE 'a%') IS NOT FALSE`, `(b AND i4 > 0) IS UNKNOWN`
                :is_truth_cond,
                # `coalesce(i2, i4) > 5`, `coalesce(s, 'x') = 'x'`, `coalesce(b, false)`
                :coalesce,
                # `i2 < i4`, `f = r`, `n > i8`, `ts < tz`, `d = ts`, `s = t`
                :col_vs_col,
                # `i4 + 1 BETWEEN 0 AND 10`, `lower(s) BETWEEN 'a' AND 'b'`
                :between_expr
              ] ++ Arrays.constructs()

  @typedoc "A construct (see `constructs/0`)."
  @type construct :: atom()
  @typedoc "A row: column name => text (PostgreSQL's input or output form) or nil."
  @type row :: %{String.t() => String.t() | nil}

  @doc "The table's columns, `{name, type}`."
  @spec columns() :: [{String.t(), LsmIndex.Filter.ColumnType.t()}]
  def columns, do: @columns

  @doc "PostgreSQL's name of a column type (see `types_sql/0` for the enums)."
  @spec pg_type(LsmIndex.Filter.ColumnType.t()) :: String.t()
  def pg_type({:array, element}), do: pg_type(element) <> "[]"
  def pg_type({:enum, name, _}), do: name
  def pg_type({:enum, _}), do: @unnamed_enum
  def pg_type(type), do: Atom.to_string(type)

  @doc "SQL that (re)creates the types the table needs (after its table is dropped)."
  @spec types_sql() :: String.t()
  def types_sql do
    for {_, type} <- @columns, labels = enum_labels(type), into: "" do
      list = Enum.map_join(labels, ", ", &quote_sql/1)
      name = pg_type(type)
      "DROP TYPE IF EXISTS #{name};\nCREATE TYPE #{name} AS ENUM (#{list});\n"
    end
  end

  defp enum_labels({:enum, _name, labels}), do: labels
  defp enum_labels({:enum, labels}), do: labels
  defp enum_labels(_type), do: nil

  @doc "Every construct."
  @spec constructs() :: [construct()]
  def constructs, do: @constructs

  ## Rows

  @int_ranges %{
    int2: {-32_768, 32_767},
    int4: {-2_147_483_648, 2_147_483_647},
    int8: {-9_223_372_036_854_775_808, 9_223_372_036_854_775_807}
  }
  @floats ~w(0 -0 NaN Infinity -Infinity 1.5 -2.25 3 42 -1 1e300 1e-300 0.1 5e-324
             1.7976931348623157e308 -1.7976931348623157e308 2.5 100 -100 7)
  @bools ~w(t f)
  # the `t` column's texts: no letter whose lower case PostgreSQL and Unicode fold apart
  @texts [
    "",
    "a",
    "ab",
    "abc",
    "Ab",
    "AB",
    "abc%",
    "a%b",
    "a_b",
    "a\\b",
    "ab\\",
    "\\",
    "%",
    "_",
    "it's",
    " x ",
    "x\ty",
    "σας",
    "σασ",
    "αβγ",
    "ΑΒΓ",
    "istanbul",
    "ISTANBUL",
    "ıi",
    "é",
    "É",
    "日本語",
    "ß",
    "ǅ",
    # sharing their first 8 bytes (a text's order key), or cut by them inside a character
    "abcdefgh",
    "abcdefghij",
    "abcdefghiz",
    "ABCDEFGHIJ",
    "abcdefgh%x",
    "abcdefgé",
    "istanbul city",
    "αβγδεζ",
    "αβγδεη",
    "ΑΒΓΔΕΖ",
    "日本語テキスト",
    "日本語テスト",
    "ab\u{10FFFF}"
  ]
  # the `s` column also has these (`İ` lowercases to one character in PostgreSQL, to two in
  # Unicode; a word-final `Σ` to `σ` in PostgreSQL, to `ς` in Unicode)
  @fold_texts ["ΣΑΣ", "ΑΣ", "İstanbul", "İ"]
  @uuids [
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "123e4567-e89b-12d3-a456-426614174000"
  ]

  @float4s ~w(0 -0 NaN Infinity -Infinity 1.5 1.1 0.1 3 -2.25 3.4028235e38 1e-45 16777217
              100 7 2.5)
  @numerics ~w(0 1.5 1.50 -1.5 0.1 100 1e20 123456789012345678901234567890.123 NaN Infinity
               -Infinity 42 7 -100 0.000001 2.5 3 1.1)
  @dates ["2024-01-01", "2024-02-29", "1999-12-31", "2000-01-01", "infinity", "-infinity"] ++
           ["0044-03-15 BC", "10000-01-01", "1970-01-01", "2024-06-15", "2024-01-02"]
  @times ~w(00:00 12:00 23:59:59.999999 24:00 10:30:15.5 08:00 10:30)
  @timestamps [
    "2024-01-01 00:00:00",
    "2024-01-01 10:30:00",
    "2024-06-15 12:00:00.123456",
    "1999-12-31 23:59:59",
    "infinity",
    "-infinity",
    "0044-03-15 12:00:00 BC",
    "2000-01-01 00:00:00"
  ]
  @timestamptzs [
    "2024-01-01 00:00:00+00",
    "2024-01-01 10:30:00+05:30",
    "2024-01-01 05:00:00+00",
    "2024-06-15 12:00:00.5-08",
    "infinity",
    "-infinity",
    "1999-12-31 23:59:59+00",
    "0044-03-15 12:00:00+00 BC"
  ]

  @doc """
  `n` rows (ids 1..n) in PostgreSQL's input form: about half random, the others copies of an
  earlier row with one or two columns changed (so updates between them change few columns).
  """
  @spec rows(pos_integer()) :: [row()]
  def rows(n) do
    Enum.reduce(1..n, [], fn id, acc ->
      row =
        if acc != [] and :rand.uniform() < 0.5 do
          base = Enum.random(acc)
          fresh = random_row()

          changed =
            @columns |> tl() |> Enum.take_random(:rand.uniform(2)) |> Enum.map(&elem(&1, 0))

          Map.merge(base, Map.take(fresh, changed))
        else
          random_row()
        end

      [Map.put(row, "id", Integer.to_string(id)) | acc]
    end)
    |> Enum.reverse()
  end

  defp random_row do
    for {name, type} <- tl(@columns), into: %{} do
      {name, if(:rand.uniform() < 0.15, do: nil, else: row_value(name, type))}
    end
  end

  defp row_value(_name, type) when type in [:int2, :int4, :int8],
    do: type |> int_value() |> Integer.to_string()

  defp row_value(_name, :float8), do: Enum.random(@floats)
  defp row_value(_name, :bool), do: Enum.random(@bools)
  defp row_value("s", :text), do: Enum.random(@texts ++ @fold_texts ++ @fold_texts)
  defp row_value(_name, type) when type in [:text, :varchar], do: Enum.random(@texts)
  defp row_value(_name, :uuid), do: Enum.random(@uuids)
  defp row_value(_name, :float4), do: Enum.random(@float4s)
  defp row_value(_name, :numeric), do: Enum.random(@numerics)
  defp row_value(_name, :date), do: Enum.random(@dates)
  defp row_value(_name, :time), do: Enum.random(@times)
  defp row_value(_name, :timestamp), do: Enum.random(@timestamps)
  defp row_value(_name, :timestamptz), do: Enum.random(@timestamptzs)
  defp row_value(_name, {:enum, _name_, labels}), do: Enum.random(labels)
  defp row_value(_name, {:enum, labels}), do: Enum.random(labels)
  defp row_value(_name, {:array, element}), do: Arrays.value(element)

  @doc """
  A value of column `name` as a random row holds it (PostgreSQL's input form, never NULL):
  what the templates test draws its parameters from.
  """
  @spec value(String.t()) :: String.t()
  def value(name) do
    {^name, type} = List.keyfind(@columns, name, 0)
    row_value(name, type)
  end

  # LIKE patterns every run should meet: empty, `%`/`_` only, escapes, prefixes longer than
  # a text's 8-byte order key, literals cut inside a character, folding letters
  @like_corners [
    "",
    "%",
    "%%",
    "_",
    "___",
    "_%",
    "a%",
    "ab%",
    "%b%",
    "%B%",
    "x\\%%",
    "\\_",
    "\\%",
    "a\\_b",
    "%\\\\%",
    "abcdefgh%",
    "abcdefghi%",
    "abcdefghij",
    "ABCDEFGH%",
    "%defghi%",
    "istanbul%",
    "ISTANBUL%",
    "İstanbul%",
    "%σ%",
    "%Σ%",
    "%ς",
    "αβγδ%",
    "αβγδε%",
    "ΑΒΓΔΕ%",
    "日本語テ%",
    "日本語テキ%",
    "%語テ%",
    "a_c%",
    "%bc",
    "ab\u{10FFFF}%"
  ]

  @doc """
  A LIKE pattern: a corner (`''`, `'%'`, `'___'`, escapes, long prefixes) or a text of the
  rows' pools with `%` and `_` put in. Never a lone trailing backslash (PostgreSQL's error on
  it depends on the rows: a known gap).
  """
  @spec like_pattern() :: String.t()
  def like_pattern do
    if :rand.uniform() < 0.4 do
      Enum.random(@like_corners)
    else
      chars =
        (@texts ++ @fold_texts)
        |> Enum.random()
        |> String.graphemes()
        |> Enum.map(fn c ->
          case :rand.uniform(10) do
            1 -> "%"
            2 -> "_"
            _ -> c
          end
        end)
        |> Enum.join()

      pat = Enum.random([chars, "%" <> chars, chars <> "%", "%" <> chars <> "%"])
      if odd_trailing_backslash?(pat), do: pat <> "%", else: pat
    end
  end

  defp int_value(type) do
    {lo, hi} = Map.fetch!(@int_ranges, type)

    case :rand.uniform(4) do
      1 -> Enum.random([lo, hi, 0, 1, -1])
      2 -> Enum.random(-3..3)
      3 -> Enum.random([7, 42, 100, -100, 32_767, -32_768, 2_147_483_647, -2_147_483_648])
      _ -> lo + :rand.uniform(hi - lo + 1) - 1
    end
    |> case do
      v when v >= lo and v <= hi -> v
      _ -> 42
    end
  end

  ## Clauses

  @doc """
  A random clause using only `enabled` constructs (a `MapSet`), and the constructs it used.
  """
  @spec clause(MapSet.t(construct())) :: {String.t(), MapSet.t(construct())}
  def clause(enabled) do
    Process.put(:where_gen, {enabled, MapSet.new()})
    sql = expr(0) |> IO.iodata_to_binary() |> String.trim()
    {_, used} = Process.delete(:where_gen)
    {sql, used}
  end

  # The configuration lives in the process dictionary while one clause is built, so every
  # helper can ask `on?/1` and record what it used with `use!/1`.
  @doc false
  def on?(construct) do
    {enabled, _} = Process.get(:where_gen)
    MapSet.member?(enabled, construct)
  end

  @doc false
  def use!(construct) do
    {enabled, used} = Process.get(:where_gen)
    Process.put(:where_gen, {enabled, MapSet.put(used, construct)})
  end

  # One of `options` (`{construct | nil, fun}`, nil: always allowed) whose construct is on.
  defp choose(options) do
    allowed = for {c, f} <- options, c == nil or on?(c), do: {c, f}
    {c, f} = Enum.random(allowed)
    if c, do: use!(c)
    f.()
  end

  defp expr(depth) do
    compound? = depth < 3 and on?(:and_or_not) and :rand.uniform() < 0.45

    if compound? do
      use!(:and_or_not)

      case :rand.uniform(5) do
        1 ->
          [kw("NOT"), sp(), sub(depth)]

        n ->
          op = if n <= 3, do: "AND", else: "OR"
          parts = for _ <- 1..Enum.random(2..3), do: sub(depth)
          Enum.intersperse(parts, [sp(), kw(op), sp()])
      end
    else
      atom()
    end
  end

  defp sub(depth) do
    if on?(:bare_precedence) and :rand.uniform() < 0.5 do
      use!(:bare_precedence)
      expr(depth + 1)
    else
      ["(", expr(depth + 1), ")"]
    end
  end

  defp atom do
    {name, type} = Enum.random(tl(@columns) ++ [hd(@columns)])

    case type do
      {:array, element} ->
        if Arrays.any_on?() or on?(:is_null), do: Arrays.atom(name, element), else: atom()

      _ ->
        scalar_atom(name, type)
    end
  end

  defp scalar_atom(name, type) do
    # varchar behaves as text: the same clauses
    type = if type == :varchar, do: :text, else: type

    # a clause with a mismatched literal is refused as a whole: rarely
    if on?(:type_mismatch) and :rand.uniform() < 0.03 do
      use!(:type_mismatch)
      [col(name), op_sp(), op(), op_sp(), mismatch(type)]
    else
      typed_atom(name, type)
    end
  end

  defp typed_atom(name, type) do
    choose([
      {:func_text, &func_text/0},
      {:length,
       fn ->
         ["length(", col(Enum.random(["s", "t", "v"])), ") ", op(), " ", "#{Enum.random(0..4)}"]
       end},
      {:abs,
       fn ->
         Enum.random([
           ["abs(", col("f"), ") ", op(), " 1.5"],
           ["abs(", col("n"), ") ", op(), " ", Enum.random(["1.5", "'Infinity'", "0"])],
           ["abs(", col("r"), ") > 1"]
         ])
       end},
      {:arith, &arith/0},
      {:date_arith,
       fn ->
         [
           col("date"),
           Enum.random([" + 1", " - 7", " + 366"]),
           " ",
           op(),
           " ",
           Enum.random(["'2024-01-02'", "'2000-01-01'", "'infinity'"])
         ]
       end},
      {:col_cast, &col_cast/0},
      {:cast_syntax,
       fn ->
         Enum.random([
           ["CAST(", col("i4"), " AS text) = '-1'"],
           ["CAST(", col("n"), " AS float8) > 1"],
           ["CAST(", col("ts"), " AS date) = '2024-01-01'"]
         ])
       end},
      {:concat,
       fn ->
         Enum.random([
           [col("s"), " || 'x' = 'abx'"],
           [col("t"), " || ", col("i2"), " LIKE 'a%'"],
           ["(", col("s"), " || ", col("t"), ") IS NULL"],
           [col("b"), " || '' = 't'"],
           ["'x' || ", col("n"), " = 'x1.50'"]
         ])
       end},
      {:is_null_expr,
       fn ->
         Enum.random([
           ["lower(", col("s"), ") IS NULL"],
           ["(", col("i2"), " + 1) IS NOT NULL"],
           ["coalesce(", col("s"), ", ", col("t"), ") IS NULL"]
         ])
       end},
      {:is_truth_cond,
       fn ->
         Enum.random([
           ["(", col("i4"), " > 5) IS TRUE"],
           ["(", col("s"), " LIKE 'a%') IS NOT FALSE"],
           ["(", col("b"), " AND ", col("i4"), " > 0) IS UNKNOWN"],
           ["(", col("f"), " = 1.5) IS NOT TRUE"],
           ["(", col("i4"), " > 5) = ", col("b")],
           ["coalesce(", col("i2"), " < 0, ", col("b"), ", false)"]
         ])
       end},
      {:coalesce,
       fn ->
         Enum.random([
           ["coalesce(", col("i2"), ", ", col("i4"), ") > 5"],
           ["coalesce(", col("s"), ", 'x') = 'x'"],
           ["coalesce(", col("n"), ", 0) = 0"],
           ["coalesce(", col("b"), ", false)"],
           ["coalesce(", col("i4"), ", 1.5) > 1"],
           ["coalesce(", col("r"), ", ", col("f"), ") < 2"]
         ])
       end},
      {:col_vs_col,
       fn ->
         {a, b} =
           Enum.random([
             {"i2", "i4"},
             {"f", "r"},
             {"n", "i8"},
             {"ts", "tz"},
             {"date", "ts"},
             {"s", "t"},
             {"i4", "f"},
             {"n", "f"},
             {"date", "tz"}
           ])

         [col(a), " ", op(), " ", col(b)]
       end},
      {:between_expr,
       fn ->
         Enum.random([
           ["(", col("i2"), " + 1) ", Enum.random(["", "NOT "]), "BETWEEN 0 AND 10"],
           ["lower(", col("s"), ") BETWEEN 'a' AND 'b'"],
           [col("n"), " * 2 BETWEEN SYMMETRIC 5 AND 1"]
         ])
       end},
      {:const, fn -> kw(Enum.random(["TRUE", "FALSE", "NULL"])) end},
      {:named_enum, &named_enum/0},
      {:lazy_fold, &lazy_fold/0},
      {:is_null, fn -> [col(name), sp(), kw(Enum.random(["IS NULL", "IS NOT NULL"]))] end},
      {:cmp, fn -> cmp(name, type) end},
      {:cmp, fn -> cmp(name, type) end},
      {:cmp, fn -> cmp(name, type) end},
      {:literal_left, fn -> [left_literal(type), op_sp(), op(), op_sp(), col(name)] end},
      {:cast_left, fn -> [cast_left(type), op_sp(), op(), op_sp(), col(name)] end},
      {:in, fn -> in_list(name, type, "IN") end},
      {:not_in, fn -> in_list(name, type, "NOT IN") end} | typed_atoms(name, type)
    ])
  end

  # Refused forms are rarer than accepted ones: one refused atom refuses its whole clause.
  defp named_enum do
    if :rand.uniform() < 0.2,
      do:
        Enum.random([
          [col("e"), " = ", col("m")],
          [col("e"), " = 'nope'::prio"],
          [col("m"), " = 'sad'::prio"],
          ["CAST(", col("i4"), " AS prio) = ", col("e")]
        ]),
      else: accepted_named_enum()
  end

  defp accepted_named_enum do
    Enum.random([
      [col("e"), " ", op(), " ", quote_sql(Enum.random(@prio)), "::prio"],
      [col("e"), "::text::prio ", op(), " ", col("e")],
      ["CAST(", col("e"), "::text AS prio) ", op(), " 'high'"],
      ["CAST(", quote_sql(Enum.random(@prio)), " AS prio) ", op(), " ", col("e")],
      ["coalesce(", col("e"), ", 'low'::prio) ", op(), " 'medium'"],
      [col("e"), " IN ('low'::prio, ", quote_sql(Enum.random(@prio)), ")"],
      [col("e"), "::text = ", quote_sql(Enum.random(@prio))]
    ])
  end

  defp lazy_fold do
    err = Enum.random(if :rand.uniform() < 0.15, do: @parse_errors, else: @plan_errors)
    cond_ = Enum.random([[col("i4"), " > 0"], [col("s"), " = 'a'"], [col("e"), " = 'low'"]])

    if :rand.uniform() < 0.25,
      do:
        Enum.random([
          ["(", err, " AND FALSE)"],
          ["(NULL AND ", err, ")"],
          ["(", cond_, " OR ", err, ")"],
          ["coalesce(NULL::int4, 1 / 0, 1) = 1"],
          ["(5 NOT BETWEEN 1 AND 1 / 0)"],
          ["1 IN (1, 1 / 0)"]
        ]),
      else: skipped_fold(err, cond_)
  end

  # Constants after which PostgreSQL's planner stops: `err` is never computed (a parser
  # error in it still refuses the clause).
  defp skipped_fold(err, cond_) do
    Enum.random([
      ["(FALSE AND ", err, ")"],
      ["(TRUE OR ", err, ")"],
      ["(", cond_, " OR TRUE OR ", err, ")"],
      ["(", cond_, " AND FALSE AND ", err, ")"],
      ["(NOT (TRUE OR ", err, ") AND ", err, ")"],
      ["((", col("i4"), " + NULL) IS NULL OR ", err, ")"],
      ["((", col("i2"), " = NULL) IS UNKNOWN OR ", err, ")"],
      ["coalesce(NULL::int4, ", "#{Enum.random(-2..2)}", ", 1 / 0) ", op(), " ", col("i4")],
      ["coalesce(", col("i4"), ", 1, 1 / 0) > 0"],
      ["coalesce(NULL, 't', 1 / 0 = 1)"],
      ["(", Enum.random(["0 NOT BETWEEN 1", "1 BETWEEN 2"]), " AND 1 / 0)"]
    ])
  end

  defp func_text do
    f = Enum.random(["lower", "upper"])
    c = col(Enum.random(["s", "t", "v"]))

    Enum.random([
      [f, "(", c, ") = ", quote_sql(Enum.random(@texts ++ @fold_texts))],
      [f, "(", c, ") LIKE ", quote_sql(Enum.random(["a%", "A%", "%Σ%", "İ%", "_"]))],
      [
        f,
        "(",
        c,
        ") IN (",
        quote_sql(Enum.random(@texts)),
        ", ",
        quote_sql(Enum.random(@fold_texts)),
        ")"
      ],
      [quote_sql(Enum.random(@texts)), " = ", f, "(", c, ")"]
    ])
  end

  defp arith do
    Enum.random([
      [col("i2"), " * 2 ", op(), " 100"],
      [col("i2"), " + 1 ", op(), " ", "#{Enum.random(-3..3)}"],
      [col("i4"), " / 2 ", op(), " 3"],
      [col("i4"), " % 7 ", op(), " 1"],
      [col("n"), " * 2 ", op(), " 3"],
      [col("n"), " / 3 ", op(), " 0.5"],
      [col("n"), " - 1.5 ", op(), " 0"],
      [col("f"), " + 1 ", op(), " 2"],
      [col("r"), " - 1 ", op(), " 0"],
      [col("i4"), " * 1.5 ", op(), " 10"],
      ["-", col("n"), " ", op(), " 5"],
      [col("i8"), " % 10 ", op(), " 7"]
    ])
  end

  defp col_cast do
    Enum.random([
      [col("i4"), "::text LIKE '1%'"],
      [col("i2"), "::text = '-1'"],
      [col("n"), "::text = '1.50'"],
      [col("n"), "::text LIKE '%.%'"],
      [col("f"), "::text = ", quote_sql(Enum.random(@floats))],
      [
        col("r"),
        "::text = ",
        quote_sql(Enum.random(["1.1", "3.4028235e+38", "1e-45", "-0", "16777216"]))
      ],
      [col("b"), "::text = 'true'"],
      [col("date"), "::text LIKE '2024%'"],
      [col("ts"), "::text LIKE '%BC'"],
      [col("tz"), "::text = '2024-01-01 05:00:00+00'"],
      [col("tm"), "::text > '10'"],
      [col("u"), "::text LIKE 'a0%'"],
      [col("e"), "::text = 'low'"],
      [col("i8"), "::float8 > 1e18"],
      [col("n"), "::float8 = 1.5"],
      [col("f"), "::numeric > 1"],
      [col("ts"), "::date = '2024-01-01'"],
      [col("tz"), "::timestamp < '2024-01-01 06:00'"],
      [col("tz"), "::date = '2024-01-01'"],
      [col("i4"), "::numeric / 3 > 1"]
    ])
  end

  defp typed_atoms(name, :text) do
    like_col = if on?(:ilike_fold), do: name, else: "t"

    [
      {:like, fn -> [col(name), sp(), kw("LIKE"), sp(), pattern(false)] end},
      {:not_like, fn -> [col(name), sp(), kw("NOT LIKE"), sp(), pattern(false)] end},
      {:ilike,
       fn ->
         if like_col == "s" and name == "s", do: use!(:ilike_fold)
         [col(like_col), sp(), kw(Enum.random(["ILIKE", "NOT ILIKE"])), sp(), pattern(true)]
       end}
    ]
  end

  defp typed_atoms(name, :bool) do
    [{:bare_bool, fn -> Enum.random([col(name), [kw("NOT"), sp(), col(name)]]) end}]
  end

  defp typed_atoms(_name, _type), do: []

  defp cmp(name, type) do
    o = op()
    lit = literal(type)

    # `!=-1` is one operator in PostgreSQL: a space after `!=` unless :bang_minus
    tight_minus? = o == "!=" and String.starts_with?(IO.iodata_to_binary(lit), "-")

    gap =
      cond do
        not tight_minus? -> op_sp()
        on?(:bang_minus) -> bang_minus_sp()
        true -> " "
      end

    [col(name), op_sp(), o, gap, lit]
  end

  defp bang_minus_sp do
    if on?(:tight) do
      use!(:bang_minus)
      use!(:tight)
      ""
    else
      " "
    end
  end

  defp in_list(name, type, word) do
    values =
      for _ <- 1..Enum.random(1..4) do
        if on?(:null_literal) and :rand.uniform() < 0.1 do
          use!(:null_literal)
          kw("NULL")
        else
          list_literal(type)
        end
      end

    [col(name), sp(), kw(word), sp(), "(", Enum.intersperse(values, [",", sp()]), ")"]
  end

  # A literal of an IN list: a date past the last timestamp only with
  # :date_past_timestamps_list (a list casts it to the list's type)
  defp list_literal(type) do
    lit = literal(type)

    cond do
      not String.contains?(IO.iodata_to_binary(lit), "5874897") -> lit
      on?(:date_past_timestamps_list) -> tap(lit, fn _ -> use!(:date_past_timestamps_list) end)
      true -> "'2024-01-01'::date"
    end
  end

  # A literal on the left of a comparison: a cast there is :cast_left.
  defp left_literal(type, tries \\ 10) do
    {enabled, used} = Process.get(:where_gen)
    lit = literal(type)

    cond do
      not String.contains?(IO.iodata_to_binary(lit), "::") ->
        lit

      on?(:cast_left) ->
        use!(:cast_left)
        lit

      tries > 0 ->
        Process.put(:where_gen, {enabled, used})
        left_literal(type, tries - 1)

      true ->
        kw("NULL")
    end
  end

  # A literal of `type` (or NULL with :null_literal, a typed literal with :typed_literal).
  defp literal(type) do
    typed = if on?(:typed_literal) and :rand.uniform() < 0.15, do: typed_form(type)

    cond do
      on?(:null_literal) and :rand.uniform() < 0.05 ->
        use!(:null_literal)
        kw("NULL")

      typed != nil ->
        use!(:typed_literal)
        typed

      true ->
        typed_literal(type)
    end
  end

  @type_names %{
    int2: ["int2", "smallint"],
    int4: ["int4", "integer", "int"],
    int8: ["int8", "bigint"],
    float8: ["float8", "double precision", "float"],
    float4: ["float4", "real"],
    numeric: ["numeric", "decimal"],
    bool: ["bool", "boolean"],
    text: ["text", "varchar", "character varying"],
    uuid: ["uuid"],
    date: ["date"],
    time: ["time", "time without time zone"],
    timestamp: ["timestamp", "timestamp without time zone"],
    timestamptz: ["timestamptz", "timestamp with time zone"]
  }

  # SQL's typed literal `type 'text'` of a value of `type` (nil for the enum SQL cannot
  # name): for an integer column, of any integer type; a double-quoted name is the catalog's.
  defp typed_form({:enum, _labels}), do: nil

  defp typed_form({:enum, name, labels}),
    do: Enum.random([name, ~s("#{name}")]) <> " " <> quote_sql(Enum.random(labels))

  defp typed_form(type) when type in [:int2, :int4, :int8] do
    lit = Enum.random([:int2, :int4, :int8])
    v = int_value(lit)
    type_word(lit) <> " " <> quote_sql(Enum.random(["#{v}", " #{v} "]))
  end

  defp typed_form(type) do
    texts =
      case type do
        :float8 -> @floats
        :float4 -> @float4s
        :numeric -> @numerics
        :bool -> ~w(t f true false yes no on off 1 0 TRUE Off)
        :text -> @texts
        :uuid -> @uuids
        :date -> @dates
        :time -> @times
        :timestamp -> @timestamps
        :timestamptz -> @timestamptzs
      end

    type_word(type) <> " " <> quote_sql(Enum.random(texts))
  end

  # A name of `type` in a typed literal: any of its SQL spellings, or its catalog name
  # double-quoted.
  defp type_word(type) do
    name = Enum.random(@type_names[type])

    if :rand.uniform() < 0.1 and name == Atom.to_string(type),
      do: ~s("#{name}"),
      else: kw(name)
  end

  defp typed_literal(type) when type in [:int2, :int4, :int8] do
    {lo, hi} = Map.fetch!(@int_ranges, type)
    v = int_value(type)

    choose([
      {:int_plain, fn -> Integer.to_string(v) end},
      {:int_string, fn -> quote_sql(Integer.to_string(v)) end},
      {:int_string_space, fn -> quote_sql(Enum.random([" #{v} ", "+#{abs(v)}", "  #{v}"])) end},
      {:int_out_of_range, fn -> Integer.to_string(Enum.random([lo - 1, hi + 1, hi * 4])) end},
      {:int_decimal,
       fn -> Enum.random(["#{v}.0", "#{div(v, 2)}.5", "1e2", "#{Enum.random(0..9)}.25"]) end},
      {:int_cast, fn -> int_cast(v, type) end},
      {:int_cast_wide, fn -> int_cast_wide(type) end},
      {:neg_cast_min, fn -> "#{lo}::#{type}" end},
      {:float_cast_on_int,
       fn ->
         Enum.random([
           "#{min(abs(v), 1_000_000)}::float8",
           "#{abs(v)}::float8",
           "#{abs(v)}::real",
           "'#{v}'::float8"
         ])
       end},
      {:unsupported_cast,
       fn -> "#{abs(v)}::#{Enum.random(["numeric", "double precision", "real"])}" end}
    ])
  end

  defp typed_literal(:float8) do
    choose([
      {:float_plain,
       fn ->
         Enum.random(~w(0 1 3 7 42 100 -1 -100 1.5 -2.25 2.5 0.1 .5 1e3 1.5E-3 1e300 1e-300 1e308
              -1e308 0.0 -0.0 2))
       end},
      {:float_plain, fn -> "#{Enum.random(-5..5)}::float8" end},
      {:float_trailing_point, fn -> Enum.random(["5.", "-1.", "0.", "1.e2"]) end},
      {:int_cast, fn -> "#{Enum.random(0..100)}::int4" end},
      {:float_special,
       fn ->
         v = Enum.random(["NaN", "Infinity", "-Infinity"])
         Enum.random([quote_sql(v), quote_sql(v) <> "::float8"])
       end},
      {:float_string_variants,
       fn ->
         quote_sql(Enum.random(["inf", "-inf", "nan", "+Infinity", "infinity", "INF", "1E3"]))
       end},
      {:float_string_space, fn -> quote_sql(Enum.random([" 1.5 ", " NaN", "3 "])) end},
      {:float_out_of_range, fn -> Enum.random(["1e400", "-1e400", "1e-400"]) end},
      {:float_precision,
       fn ->
         Enum.random([
           "4.9e-324",
           "0.1000000000000000055511151231257827021181583404541015625",
           "1.7976931348623157e308",
           "2.2250738585072014e-308",
           "0.30000000000000004"
         ])
       end},
      {:unsupported_cast, fn -> "1.5::#{Enum.random(["numeric", "double precision"])}" end}
    ])
  end

  defp typed_literal(:bool) do
    choose([
      {:bool_plain, fn -> kw(Enum.random(["TRUE", "FALSE"])) end},
      {:bool_words,
       fn ->
         quote_sql(Enum.random(~w(t f true false yes no on off 1 0 TRUE False Y n OFF On)))
       end},
      {:bool_prefix, fn -> quote_sql(Enum.random(~w(tr tru fa fal ye of))) end},
      {:bool_space, fn -> quote_sql(Enum.random([" 1 ", " t", "f ", " true "])) end},
      {:bool_cast,
       fn ->
         Enum.random(["'t'::bool", "'false'::boolean", "true::bool", "FALSE::boolean"])
       end},
      {:int_to_bool_cast, fn -> "#{Enum.random(0..2)}::bool" end}
    ])
  end

  defp typed_literal(:text) do
    text = Enum.random(if on?(:ilike_fold), do: @texts ++ @fold_texts, else: @texts)

    choose([
      {:text_plain, fn -> quote_sql(text) end},
      {:text_cast, fn -> quote_sql(text) <> "::text" end},
      {:e_string, fn -> "E" <> quote_sql(String.replace(text, "\\", "\\\\")) end},
      {:unsupported_cast, fn -> quote_sql(text) <> "::varchar" end}
    ])
  end

  defp typed_literal(:uuid) do
    u = String.downcase(Enum.random(@uuids))
    hex = String.replace(u, "-", "")

    choose([
      {:uuid_plain, fn -> quote_sql(u) end},
      {:uuid_upper, fn -> quote_sql(String.upcase(u)) end},
      {:uuid_nohyphen, fn -> quote_sql(hex) end},
      {:uuid_braces, fn -> quote_sql("{" <> u <> "}") end},
      {:uuid_grouping,
       fn ->
         groups = for <<g::binary-4 <- hex>>, do: g
         quote_sql(Enum.join(groups, "-"))
       end},
      {:uuid_cast, fn -> quote_sql(u) <> "::uuid" end}
    ])
  end

  defp typed_literal(:float4) do
    use!(:float4)

    Enum.random(
      ~w(1.5 1.1 0.1 3 16777217 '1.1' 'NaN' 1.1::float4 1.1::real '3.4028235e38' -2.25 '-0'
         '1e-45' 100 0 2.5::float8)
    )
  end

  defp typed_literal(:numeric) do
    use!(:numeric)

    Enum.random(
      ~w(1.5 1.50 '1.5' 1e20 'NaN' 'Infinity' -1.5 0.1 42 '\ 7\ ' 1.5::numeric 1.1 '-inf' 0
         123456789012345678901234567890.123 1e-6 100::int8 '2.50'::numeric)
    )
  end

  defp typed_literal(:date) do
    use!(:date)

    v =
      Enum.random(
        ["'2024-01-01'", "'2024-1-1'", "'infinity'", "'-infinity'", "'epoch'"] ++
          ["'0044-03-15 BC'", "'2024-02-29'", "'1999-12-31'", "'10000-01-01'"]
      )

    if :rand.uniform() < 0.2, do: v <> "::date", else: v
  end

  defp typed_literal(:time) do
    use!(:time)
    v = Enum.random(~w('12:00' '23:59:59.999999' '24:00' '10:30:15.5' '00:00:00' '10:30'))
    if :rand.uniform() < 0.2, do: v <> "::time", else: v
  end

  defp typed_literal(:timestamp) do
    use!(:timestamp)

    choose([
      {nil,
       fn ->
         Enum.random([
           "'2024-01-01'",
           "'2024-01-01 10:30'",
           "'2024-01-01T10:30:00'",
           "'infinity'",
           "'-infinity'",
           "'2024-01-01 10:30:00+05'",
           "'2024-06-15 12:00:00.123456'",
           "'2024-01-01 10:30'::timestamp",
           "'0044-03-15 12:00 BC'"
         ])
       end},
      {:datetime_cast,
       fn ->
         Enum.random([
           "'2024-01-01'::date",
           "'2024-01-01 10:30:00+05'::timestamptz",
           # past the last timestamp: compared by the cross-type operator, cast in a list
           "'5874897-12-31'::date"
         ])
       end}
    ])
  end

  defp typed_literal(:timestamptz) do
    use!(:timestamptz)

    choose([
      {nil,
       fn ->
         Enum.random([
           "'2024-01-01 10:30:00+05:30'",
           "'2024-01-01 05:00:00Z'",
           "'2024-01-01'",
           "'-infinity'",
           "'infinity'",
           "'2024-06-15 20:00:00.5+00'",
           "'2024-01-01 10:30'::timestamptz",
           "'1999-12-31 23:59:59'"
         ])
       end},
      {:datetime_cast,
       fn ->
         Enum.random([
           "'2024-01-01'::date",
           "'2024-01-01 05:00'::timestamp",
           "'5874897-12-31'::date"
         ])
       end}
    ])
  end

  defp typed_literal({:enum, "prio", labels}) do
    use!(:enum)
    label = quote_sql(Enum.random(labels))

    choose([
      {nil, fn -> label end},
      {:named_enum, fn -> Enum.random([label <> "::prio", "CAST(#{label} AS prio)"]) end}
    ])
  end

  defp typed_literal({:enum, labels}) do
    use!(:enum)
    quote_sql(Enum.random(labels))
  end

  # `v` cast to an integer type whose range holds it; `-N::t` only where `N` fits `t` (the
  # cast binds before the minus: the rest is :neg_cast_min)
  defp int_cast(v, type) do
    to = Enum.find(Enum.shuffle([:int2, :int4, :int8]), type, &fits?(v, &1))
    name = cast_name(to)

    if :rand.uniform() < 0.5 and fits?(abs(v), to),
      do: "#{v}::#{name}",
      else: "'#{v}'::#{name}"
  end

  defp fits?(v, type) do
    {lo, hi} = Map.fetch!(@int_ranges, type)
    v >= lo and v <= hi
  end

  defp int_cast_wide(:int8), do: "'9223372036854775807'::int8"
  defp int_cast_wide(:int4), do: "#{Enum.random([2_147_483_648, 10_000_000_000])}::int8"
  defp int_cast_wide(:int2), do: "#{Enum.random([32_768, 40_000])}::int4"

  defp cast_name(type) do
    if on?(:cast_alias) and :rand.uniform() < 0.5 do
      use!(:cast_alias)

      case type do
        :int2 -> "smallint"
        :int4 -> Enum.random(["integer", "int"])
        :int8 -> "bigint"
      end
    else
      Atom.to_string(type)
    end
  end

  defp cast_left(type) do
    case type do
      t when t in [:int2, :int4, :int8] -> "'#{Enum.random(-3..3)}'::#{t}"
      :float8 -> "'1.5'::float8"
      :bool -> "'t'::bool"
      :text -> "'ab'::text"
      :uuid -> quote_sql(hd(@uuids)) <> "::uuid"
      :float4 -> "'1.1'::float4"
      :numeric -> "'1.5'::numeric"
      :date -> "'2024-01-01'::date"
      :time -> "'10:30'::time"
      :timestamp -> "'2024-01-01 10:30'::timestamp"
      :timestamptz -> "'2024-01-01 05:00:00+00'::timestamptz"
      {:enum, "prio", _} -> "'high'::prio"
      {:enum, _} -> "NULL"
    end
  end

  defp mismatch(type) do
    case type do
      :text -> Enum.random(["5", "TRUE", "1.5"])
      :bool -> Enum.random(["1", "'maybe'", "1.5"])
      :uuid -> Enum.random(["5", "'xyz'", "TRUE"])
      :float8 -> Enum.random(["TRUE", "'abc'"])
      :float4 -> Enum.random(["TRUE", "'abc'", "'1e39'"])
      :numeric -> Enum.random(["TRUE", "'abc'", "'1_000'"])
      t when t in [:date, :timestamp, :timestamptz] -> Enum.random(["5", "'2024-02-30'", "TRUE"])
      :time -> Enum.random(["5", "'25:00'", "TRUE"])
      {:enum, "prio", _} -> Enum.random(["'nope'", "5", "'LOW'", "'sad'::#{@unnamed_enum}"])
      {:enum, _} -> Enum.random(["'nope'", "5", "'low'::prio"])
      _int -> Enum.random(["TRUE", "'abc'", "'1.5'"])
    end
  end

  defp pattern(case_insensitive) do
    pool = if case_insensitive and not on?(:ilike_fold), do: @texts, else: @texts ++ @fold_texts
    pool = if on?(:like_escapes), do: pool, else: Enum.reject(pool, &String.contains?(&1, "\\"))
    base = Enum.random(pool)
    if String.contains?(base, "\\"), do: use!(:like_escapes)
    if case_insensitive and Enum.any?(@fold_texts, &(&1 == base)), do: use!(:ilike_fold)

    chars =
      base
      |> String.graphemes()
      |> Enum.map(fn c ->
        case :rand.uniform(8) do
          1 -> "%"
          2 -> "_"
          _ -> c
        end
      end)

    chars =
      if on?(:like_escapes) and :rand.uniform() < 0.3 do
        use!(:like_escapes)
        List.insert_at(chars, Enum.random(0..length(chars)), Enum.random(["\\%", "\\_", "\\\\"]))
      else
        chars
      end

    pat =
      Enum.random([
        Enum.join(chars),
        "%" <> Enum.join(chars),
        Enum.join(chars) <> "%",
        "%" <> Enum.join(chars) <> "%"
      ])

    pat =
      if on?(:like_trailing_backslash) and :rand.uniform() < 0.2,
        do: pat <> "\\",
        else: pat

    pat =
      cond do
        not odd_trailing_backslash?(pat) ->
          pat

        on?(:like_trailing_backslash) ->
          use!(:like_trailing_backslash)
          pat

        true ->
          pat <> "%"
      end

    quote_sql(pat)
  end

  defp odd_trailing_backslash?(pat) do
    trailing = pat |> String.reverse() |> String.graphemes() |> Enum.take_while(&(&1 == "\\"))
    rem(length(trailing), 2) == 1
  end

  defp quote_sql(text), do: "'" <> String.replace(text, "'", "''") <> "'"

  @doc false
  def col(name) do
    if on?(:quoted_ident) and :rand.uniform() < 0.3 do
      use!(:quoted_ident)
      ~s("#{name}")
    else
      name
    end
  end

  @doc false
  def op, do: Enum.random(["=", "<>", "!=", "<", "<=", ">", ">="])

  defp op_sp do
    if on?(:tight) and :rand.uniform() < 0.4 do
      use!(:tight)
      ""
    else
      sp()
    end
  end

  defp sp do
    if on?(:whitespace) and :rand.uniform() < 0.2 do
      use!(:whitespace)
      Enum.random(["  ", "\t", "\n", "\r\n"])
    else
      " "
    end
  end

  @doc false
  def kw(word) do
    if on?(:keyword_case) and :rand.uniform() < 0.3 do
      use!(:keyword_case)

      word
      |> String.graphemes()
      |> Enum.map_join(fn c ->
        if :rand.uniform() < 0.5, do: String.downcase(c), else: c
      end)
    else
      word
    end
  end
end
