defmodule LsmIndex.Where do
  @moduledoc """
  Parses the SQL WHERE clauses of shapes (the parser of the Rust core, through the NIF) into
  the expression trees of `LsmIndex.Filter.Expr`.

      iex> LsmIndex.Where.parse("user_id = 7 AND status IN ('open', 'late')",
      ...>   [{"user_id", :int8}, {"status", :text}])
      {:ok, {:and, [{:eq, "user_id", 7}, {:in, "status", ["open", "late"]}]}}

  The subset, read as PostgreSQL 15 reads it (checked against PostgreSQL itself by the test
  suite): column references (optionally double-quoted), literals (integers, decimals,
  `'text'` with `''` escapes, `E'…'` escape strings, `TRUE`/`FALSE`, `NULL`, a sign, casts
  such as `'…'::uuid`, `::varchar`, `::double precision`; a cast binds tighter than the sign),
  `= <> != < <= > >=` (a literal may stand on either side), `[NOT] IN (…)`, `IS [NOT] NULL`,
  `IS [NOT] DISTINCT FROM`, `IS [NOT] TRUE | FALSE | UNKNOWN` (boolean columns),
  `[NOT] BETWEEN [SYMMETRIC]`, `[NOT] LIKE`/`ILIKE` (ILIKE folds one character to one, as
  PostgreSQL under a UTF-8 ctype), `AND`, `OR`, `NOT` and parentheses. Literals are checked
  against the column types as PostgreSQL's input functions check them and come back as
  Elixir values (integers; floats, `:nan`, `:infinity`, `:neg_infinity` for float8;
  booleans; text; uuids as lowercase canonical text), which `LsmIndex.Filter` renders back to
  the same SQL (`LsmIndex.Filter.Expr`) (BETWEEN and the IS tests come back as the comparisons
  they stand for; a decimal or float8 against an integer column comes back as the integer
  comparison it equals, `user_id < 42.5` as `user_id <= 42`). A clause is at most 1 MiB and 64
  levels deep. Not yet: `numeric`/`real` casts, functions, arithmetic, parameters.
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
  # (`{name, {"enum", labels}}` for an enum).
  @spec native_columns!(columns()) :: [{String.t(), String.t() | {String.t(), [String.t()]}}]
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
