defmodule LsmIndex.Where do
  @moduledoc """
  Parses the SQL WHERE clauses of shapes (the parser of the Rust core, through the NIF) into
  the expression trees of `LsmIndex.Filter.Expr`.

      iex> LsmIndex.Where.parse("user_id = 7 AND status IN ('open', 'late')",
      ...>   [{"user_id", :int8}, {"status", :text}])
      {:ok, {:and, [{:eq, "user_id", 7}, {:in, "status", ["open", "late"]}]}}

  The language is PostgreSQL 15's, checked against PostgreSQL itself by the test suite (the
  full table, type rules and what is still out: DESIGN.md, "The language"): column
  references (optionally double-quoted), literals of every column type (integers, decimals,
  `'text'`, `E'…'`, `TRUE`/`FALSE`, `NULL`, casts `x::t` and `CAST(x AS t)`, typed literals
  `date '2024-01-01'`; a cast binds tighter than a sign), `$n` parameters, comparisons,
  `[NOT] IN`, `[NOT] BETWEEN [SYMMETRIC]`, `IS [NOT] NULL | TRUE | FALSE | UNKNOWN | DISTINCT
  FROM`, `[NOT] LIKE` / `ILIKE`, `lower upper length char_length abs coalesce`, `+ - * /
  %`, `||`, `AND`, `OR`, `NOT` and parentheses; arrays (`@> <@ &&`, `x op ANY | SOME | ALL
  (array)`, array comparisons, `ARRAY[...]`, `'{1,2}'::int8[]`, `cardinality`,
  `array_length`); column types `:int2 :int4 :int8 :float4 :float8 :numeric :bool :text
  :varchar :uuid :date :time :timestamp :timestamptz`, `{:enum, name, labels}` (a named
  enum: `'sad'::mood`, `mood 'sad'`), `{:enum, labels}` and `{:array, type}` of any of them
  (one-dimensional; values in PostgreSQL's array text, `{1,NULL,"a b"}`). `column =
  ANY(constant)` comes back as `{:in, column, values}` (`<> ALL`: `NOT IN`), other array
  conditions as `{:sql, text}`.
  Constants are folded as PostgreSQL's planner folds them, so a clause is refused for an
  error (`1/0`) only where PostgreSQL would raise it (not in `false AND 1/0 = 1`).

  A condition on a column against literals comes back as a tree node, its literals as Elixir
  values (integers; floats, `:nan`, `:infinity`, `:neg_infinity`; booleans; text; every
  other type — uuids, numerics, dates, times, enum labels — as PostgreSQL's text of it),
  which `LsmIndex.Filter` renders back to the same SQL (`LsmIndex.Filter.Expr`); BETWEEN
  and the IS tests come back as the comparisons they stand for, and a decimal or float8
  against an integer column as the integer comparison it equals (`user_id < 42.5` as
  `user_id <= 42`). A condition over expressions (`lower(email) = 'x'`, `price * 2 > 10`)
  comes back as `{:sql, text}`. A clause is at most 1 MiB and 64 levels deep.
  """

  alias LsmIndex.Filter.{ColumnType, Expr}
  alias LsmIndex.Native

  @typedoc "Column names and types, as a list of pairs or a map."
  @type columns :: ColumnType.columns()
  @typedoc "Why a clause was refused: the byte offset and what was expected there."
  @type error :: {:invalid_where, non_neg_integer(), String.t()}

  # Longer clauses are parsed on a dirty scheduler (~1 µs per 20 bytes).
  @dirty_bytes 16_384

  @doc "Parses `sql` against `columns`; raises `ArgumentError` for malformed arguments."
  @spec parse(String.t(), columns()) :: {:ok, Expr.t()} | {:error, error()}
  def parse(sql, columns) when is_binary(sql) do
    cols = native_columns!(columns)

    cond do
      not String.valid?(sql) -> {:error, {:invalid_where, 0, "the clause is not UTF-8 text"}}
      byte_size(sql) > @dirty_bytes -> Native.where_parse_dirty(sql, cols)
      true -> Native.where_parse_small(sql, cols)
    end
  end

  def parse(sql, _columns),
    do: raise(ArgumentError, "a WHERE clause is a string, got: #{inspect(sql)}")

  @doc """
  `parse/2`, returning the tree or raising `LsmIndex.Error` with
  `reason: {:invalid_where, byte_offset, message}`.
  """
  @spec parse!(String.t(), columns()) :: Expr.t()
  def parse!(sql, columns), do: sql |> parse(columns) |> LsmIndex.Error.unwrap!()

  @doc false
  # `columns` checked (`ColumnType.columns!/1`) in the NIF's form, `[{name, type_name}]`
  # (`{name, {"enum", labels}}` for an enum, `{name, {"enum", type_name, labels}}` for a
  # named one).
  @spec native_columns!(columns()) :: [{String.t(), String.t() | tuple()}]
  def native_columns!(columns) do
    for {name, type} <- ColumnType.columns!(columns), do: {name, ColumnType.native(type)}
  end

  @doc false
  # The values of `$1`, `$2`, ... (`ShapeRouter.add_shape/4`, `Filter.add_shape/3`): a list of
  # UTF-8 strings (PostgreSQL text) or nils (NULL); raises `ArgumentError` for anything else.
  @spec params!(term()) :: [String.t() | nil]
  def params!(params) when is_list(params) do
    Enum.each(params, fn
      nil ->
        :ok

      p when is_binary(p) ->
        unless String.valid?(p),
          do: raise(ArgumentError, "a parameter is UTF-8 text, got: #{inspect(p)}")

      other ->
        raise ArgumentError, "a parameter is a string or nil, got: #{inspect(other)}"
    end)

    params
  end

  def params!(other),
    do: raise(ArgumentError, "params are a list of strings or nils, got: #{inspect(other)}")

  @doc false
  # The `:lc_ctype` option (`ShapeRouter`, `Filter`): `:utf8` or `:c`.
  @spec lc_ctype!(term()) :: :utf8 | :c
  def lc_ctype!(ctype) when ctype in [:utf8, :c], do: ctype

  def lc_ctype!(other),
    do: raise(ArgumentError, ":lc_ctype must be :utf8 or :c, got: #{inspect(other)}")
end
