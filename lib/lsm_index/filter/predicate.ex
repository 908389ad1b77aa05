defmodule LsmIndex.Filter.Predicate do
  @moduledoc """
  The filter's WHERE semantics: the Rust predicate engine (`lsm_index_core::predicate`, the
  one `LsmIndex.ShapeRouter` runs) through the `filter_*` NIFs, so filter and router cannot
  disagree.

    * `compile!/2` - once per shape: a clause (SQL text, or a tree rendered by
      `LsmIndex.Filter.Expr.to_sql!/1`) compiled against the shape's columns into index plans
      (`{column, keys}`: a matching row has one of the keys in one of the columns), the
      residual (an immutable NIF resource, `nil` when nothing is left to check) and the
      referenced columns.
    * `schema/2` - once per change of a table's referenced columns: the record parser.
    * `row!/2` - once per record: its referenced columns parsed (Postgres text to typed
      values), the value keys of the indexed ones, and the columns that did not parse.
    * `eval/3` - once per record: every candidate residual evaluated on the row in one call.

  The protocol path of one index (`LsmIndex.Filter.Index.Protocol.affected_shapes/4`) reads a
  record without a schema: `parser/1` once per index, then per record `record_key!/3` (the
  value key of the index's column, in one call) and `eval_record!/3` (the candidates'
  residuals, each parsing the columns it reads from the record, in one call).

  Keys are binaries from the core's one key encoder (`lsm_index_core::key::value_key`): one
  key per SQL value, so a literal and a row value meet whatever their text (`' 7'` and `7`
  in an int column, `'-0'` and `0` in float8, any uuid spelling).

  Scheduling: clauses over 16 KiB compile on a dirty CPU scheduler (as `LsmIndex.Where`
  parses them); a record with more than 1,000 residuals to check is evaluated on one too
  (as the router routes with more than 1,000 scanned shapes); the rest runs on normal
  schedulers.
  """

  alias LsmIndex.Filter.{ColumnType, Expr}
  alias LsmIndex.Native

  @typedoc "A compiled residual (a NIF resource), or `nil`: always true."
  @type residual :: reference() | nil
  @typedoc "A compiled clause."
  @type compiled :: %{
          plans: [{String.t(), [binary()]}],
          residual: residual(),
          columns: [String.t()]
        }
  @typedoc "A record parser (a NIF resource) for one table's referenced columns."
  @type schema :: reference()
  @typedoc "A parsed record (a NIF resource)."
  @type row :: reference()

  @dirty_bytes 16_384
  @dirty_checks 1_000

  @doc """
  Compiles `where` (SQL text, or an `LsmIndex.Filter.Expr` tree) against `columns` (checked
  by `LsmIndex.Filter.ColumnType.columns!/1`). Raises `ArgumentError` for a clause the engine
  refuses: with the byte offset for SQL text, naming the node for a tree.
  """
  @spec compile!(Expr.t() | String.t(), ColumnType.columns(), [String.t() | nil], :utf8 | :c) ::
          compiled()
  def compile!(where, columns, params \\ [], lc_ctype \\ :utf8)

  def compile!(sql, columns, params, lc_ctype) when is_binary(sql) do
    case compile(sql, columns, params, lc_ctype) do
      {:ok, compiled} ->
        compiled

      {:error, {:invalid_where, position, message}} ->
        raise ArgumentError, "WHERE #{inspect(sql)}: at byte #{position}: #{message}"
    end
  end

  def compile!(tree, columns, params, lc_ctype) do
    {sql, spans} = Expr.to_sql!(tree)

    case compile(sql, columns, params, lc_ctype) do
      {:ok, compiled} ->
        compiled

      {:error, {:invalid_where, position, message}} ->
        case Expr.node_at(spans, position) do
          nil -> raise ArgumentError, "WHERE #{inspect(tree)}: #{message}"
          node -> raise ArgumentError, "WHERE node #{inspect(node)}: #{message}"
        end
    end
  end

  @doc """
  Compiles SQL text `sql` against `columns`: `{:ok, compiled}`, or the error
  `LsmIndex.Where.parse/2` reports, `{:error, {:invalid_where, byte_offset, message}}`.
  """
  @spec compile(String.t(), ColumnType.columns(), [String.t() | nil], :utf8 | :c) ::
          {:ok, compiled()} | {:error, LsmIndex.Where.error()}
  def compile(sql, columns, params \\ [], lc_ctype \\ :utf8) when is_binary(sql) do
    cols = LsmIndex.Where.native_columns!(columns)
    params = LsmIndex.Where.params!(params)
    lc_ctype = LsmIndex.Where.lc_ctype!(lc_ctype)

    reply =
      cond do
        not String.valid?(sql) -> {:error, {:invalid_where, 0, "the clause is not UTF-8 text"}}
        byte_size(sql) > @dirty_bytes -> Native.filter_compile_dirty(sql, cols, params, lc_ctype)
        true -> Native.filter_compile_small(sql, cols, params, lc_ctype)
      end

    case reply do
      {:ok, {plans, residual, referenced}} ->
        {:ok, %{plans: plans, residual: residual, columns: referenced}}

      {:error, _} = error ->
        error
    end
  end

  @doc """
  The record parser of a table whose shapes refer to `types` (`%{column => type}`); `row!/2`
  returns the keys of the `indexed` columns in that order.
  """
  @spec schema(%{String.t() => ColumnType.t()}, [String.t()]) :: schema()
  def schema(types, indexed) do
    cols = for {name, type} <- types, do: {name, ColumnType.native(type)}
    Native.filter_schema(cols, indexed)
  end

  @doc """
  Parses `record` (column => Postgres text or `nil`; a missing column is NULL) by `schema`:
  `{row, keys, bad}` with `keys` the value key (or `nil`: NULL or not parsed) of each indexed
  column, in order, and `bad` the columns whose text is not a value of their type. `row` is
  the parsed row for `eval/3` when `want_row?`, else `nil` (a table without residuals never
  needs one, and it costs about as much as parsing four columns). Raises `ArgumentError` for
  a value that is neither text nor `nil`.
  """
  @spec row!(schema(), map(), boolean()) :: {row() | nil, [binary() | nil], [String.t()]}
  def row!(schema, record, want_row? \\ true) do
    case Native.filter_row(schema, record, want_row?) do
      {:bad_value, column, value} ->
        raise ArgumentError,
              "record values are Postgres text or nil, got #{inspect(value)} for " <>
                inspect(column)

      parsed ->
        parsed
    end
  end

  @doc """
  Evaluates the `count` residuals of `checks` (`[{shape_id, residual}]`) on `row` in one NIF
  call: `{matched, errors}`, the shape ids whose residual is true and those whose evaluation
  failed (the filter routes to both).
  """
  @spec eval(row(), [{term(), reference()}], non_neg_integer()) :: {[term()], [term()]}
  def eval(_row, [], _count), do: {[], []}

  def eval(row, checks, count) when count > @dirty_checks,
    do: Native.filter_eval_dirty(row, checks)

  def eval(row, checks, _count), do: Native.filter_eval_small(row, checks)

  @typedoc "The parser of one column's values (a NIF resource)."
  @type parser :: reference()

  @doc "The parser of values of a `type` column, for `record_key!/3`."
  @spec parser(ColumnType.t()) :: parser()
  def parser(type), do: type |> ColumnType.native() |> Native.filter_parser()

  @doc """
  The value key of column `field` of `record` (column => Postgres text or `nil`) read by
  `parser`: a binary, `nil` when NULL or missing, `:bad` when the text is not a value of the
  type. `field` may be a plan's pseudo column (`lower(c)` is indexed under `"\\0lower\\0c"`):
  the key is then that of `lower` of `c`'s value. Raises `ArgumentError` for a value that is
  neither text nor `nil`, or a `record` that is not a map.
  """
  @spec record_key!(parser(), String.t(), map()) :: binary() | nil | :bad
  def record_key!(parser, field, record) when is_binary(field) and is_map(record),
    do: parser |> Native.filter_record_key(field, record) |> bad_value!()

  def record_key!(_parser, field, record),
    do:
      raise(
        ArgumentError,
        "a field is a column name and a record a map of column => text, got: " <>
          "#{inspect(field)}, #{inspect(record)}"
      )

  @doc """
  `eval/3` straight on `record` (no schema, no row): each residual of `checks` parses the
  columns it reads from the record (each column once per call). `{matched, errors}`; a column
  whose text does not parse makes its residuals errors (routed, as the filter routes a value
  it cannot parse). Raises `ArgumentError` as `record_key!/3` does.
  """
  @spec eval_record!(map(), [{term(), reference()}], non_neg_integer()) :: {[term()], [term()]}
  def eval_record!(_record, [], _count), do: {[], []}

  def eval_record!(record, checks, count) when count > @dirty_checks,
    do: record |> Native.filter_eval_record_dirty(checks) |> bad_value!()

  def eval_record!(record, checks, _count),
    do: record |> Native.filter_eval_record_small(checks) |> bad_value!()

  defp bad_value!({:bad_value, column, value}),
    do:
      raise(
        ArgumentError,
        "record values are Postgres text or nil, got #{inspect(value)} for #{inspect(column)}"
      )

  defp bad_value!(reply), do: reply
end
