defmodule LsmIndex.Filter do
  @moduledoc """
  Routes WAL changes to the shapes they affect, for many tables, through equality indexes that
  are either Elixir maps or `LsmIndex` NIF resources (the feature flag).

  ## Layout

  Per table: the column types its shapes refer to, one equality index per indexed column
  (`LsmIndex.Filter.Index.Protocol`), the shapes without an indexable conjunct (scanned on
  every change of the table), and for each column the shapes that refer to it. A shape's
  WHERE (`LsmIndex.Filter.Expr`) is split once, when added: its most selective equality
  conjunct (`eq`, or `in`/`or` of `eq`s on one column) goes into the column's index, the rest is
  the residual checked on the index's candidates.

  ## Routing a change

  Records carry Postgres text values; each column a shape refers to is parsed by its type
  (`LsmIndex.Filter.ColumnType`) before lookup, so `"7"` in an `:int8` column matches the
  literal `7`. WHERE clauses use SQL three-valued logic: a shape matches only when its WHERE is
  true. A value that cannot be parsed routes conservatively: every shape of the table that
  refers to that column is affected (a shape that does not refer to it cannot depend on it).
  Updates affect the union of the shapes of the old and the new record; a truncate affects
  every shape of its table.

  ## Options (`new/1`)

    * `:index` - `:map` (`LsmIndex.Filter.EqualityIndex`), `:lsm`
      (`LsmIndex.Filter.LsmEqualityIndex`) or `:auto` (a map until an index holds more than
      `:auto_threshold` values, then LSM; it never goes back). Default: the
      `config :lsm_index, :equality_index` setting, else `:map`.
    * `:auto_threshold` - values per index at which `:auto` switches (default `10_000`, or
      `config :lsm_index, :auto_threshold`)
    * `:lsm_options` - options for `LsmIndex.new/1` of each LSM index (default `[]`, or
      `config :lsm_index, :lsm_options`)

  The filter is a value: each function returns the new filter. With `index: :map` every
  copy stays valid (a persistent value). LSM indexes (`:lsm`, and `:auto` once switched)
  are resources shared by all copies, so `:lsm` filters are single-use values: keep only the
  latest. A copy superseded by a later `add_shape/3` or `remove_shape/2` that changed one of
  its LSM indexes raises `ArgumentError` when it uses that index (see
  `LsmIndex.Filter.LsmEqualityIndex`) instead of answering wrongly.
  """

  alias LsmIndex.Filter.{ColumnType, EqualityIndex, Expr, LsmEqualityIndex}
  alias LsmIndex.Filter.Index.Protocol, as: Index

  defstruct mode: :map, auto_threshold: 10_000, lsm_options: [], tables: %{}, shapes: %{}

  @typedoc "A filter."
  @type t :: %__MODULE__{}
  @typedoc "A table name, e.g. `{\"public\", \"todos\"}`."
  @type table :: term()
  @typedoc "A shape: its table, the types of its columns and its WHERE (a tree or SQL text)."
  @type shape :: %{
          table: table(),
          columns: ColumnType.columns(),
          where: Expr.t() | String.t()
        }
  @typedoc "A WAL change with Postgres text values (`nil` for NULL)."
  @type change ::
          {:insert, table(), map()}
          | {:delete, table(), map()}
          | {:update, table(), map(), map()}
          | {:truncate, table()}

  @modes [:map, :lsm, :auto]
  @empty_table %{types: %{}, refs: %{}, indexes: %{}, scans: %{}, shape_ids: MapSet.new()}

  @doc "An empty filter; see the module doc for options."
  @spec new(keyword()) :: t
  def new(opts \\ []) do
    opts =
      Keyword.validate!(opts,
        index: Application.get_env(:lsm_index, :equality_index, :map),
        auto_threshold: Application.get_env(:lsm_index, :auto_threshold, 10_000),
        lsm_options: Application.get_env(:lsm_index, :lsm_options, [])
      )

    mode = opts[:index]

    unless mode in @modes,
      do: raise(ArgumentError, ":index must be one of #{inspect(@modes)}, got: #{inspect(mode)}")

    threshold = opts[:auto_threshold]

    unless is_integer(threshold) and threshold >= 0,
      do:
        raise(
          ArgumentError,
          ":auto_threshold must be an integer >= 0, got: #{inspect(threshold)}"
        )

    unless Keyword.keyword?(opts[:lsm_options]),
      do: raise(ArgumentError, ":lsm_options must be a keyword list")

    %__MODULE__{mode: mode, auto_threshold: threshold, lsm_options: opts[:lsm_options]}
  end

  @doc "Adds (or replaces) shape `shape_id`; raises `ArgumentError` for a malformed shape."
  @spec add_shape(t, term(), shape()) :: t
  def add_shape(%__MODULE__{} = filter, shape_id, %{table: table, columns: columns} = shape) do
    columns = columns |> ColumnType.columns!() |> Map.new()
    where = shape |> Map.get(:where) |> parsed!(columns) |> Expr.normalize!(columns)
    referenced = Expr.columns(where)
    filter = remove_shape(filter, shape_id)
    t = Map.get(filter.tables, table, @empty_table)

    types =
      Enum.reduce(referenced, t.types, fn col, types ->
        type = Map.fetch!(columns, col)

        case types do
          %{^col => ^type} ->
            types

          %{^col => other} ->
            raise ArgumentError,
                  "column #{inspect(col)} of #{inspect(table)} is #{other} in other shapes, " <>
                    "not #{type}"

          _ ->
            Map.put(types, col, type)
        end
      end)

    refs =
      Enum.reduce(referenced, t.refs, fn col, refs ->
        Map.update(refs, col, MapSet.new([shape_id]), &MapSet.put(&1, shape_id))
      end)

    plan = Expr.plan(where)
    t = %{t | types: types, refs: refs, shape_ids: MapSet.put(t.shape_ids, shape_id)}

    {t, switched?} =
      case plan do
        {:scan, w} ->
          {%{t | scans: Map.put(t.scans, shape_id, w)}, false}

        {:index, col, values, residual} ->
          index = Map.get_lazy(t.indexes, col, fn -> new_index(filter) end)
          index = Index.add_shape_many(index, values, shape_id, residual)
          promoted = maybe_promote(filter, index)
          {%{t | indexes: Map.put(t.indexes, col, promoted)}, promoted !== index}
      end

    filter = %{filter | tables: Map.put(filter.tables, table, t)}
    filter = put_shape(filter, shape_id, %{table: table, plan: plan, columns: referenced})
    if switched?, do: forget_lsm_values(filter, table, elem(plan, 1)), else: filter
  end

  def add_shape(%__MODULE__{}, _shape_id, shape),
    do:
      raise(
        ArgumentError,
        "a shape is a map with :table, :columns and :where, got: #{inspect(shape)}"
      )

  @doc "Removes shape `shape_id`; an unknown id leaves the filter as it is."
  @spec remove_shape(t, term()) :: t
  def remove_shape(%__MODULE__{} = filter, shape_id) do
    case Map.pop(filter.shapes, shape_id) do
      {nil, _} ->
        filter

      {%{table: table, plan: plan, columns: referenced}, shapes} ->
        t = Map.fetch!(filter.tables, table)

        t =
          case plan do
            {:scan, _} ->
              %{t | scans: Map.delete(t.scans, shape_id)}

            {:index, col, values, residual} ->
              index = remove_from_index(Map.fetch!(t.indexes, col), values, shape_id, residual)

              indexes =
                if Index.empty?(index),
                  do: Map.delete(t.indexes, col),
                  else: Map.put(t.indexes, col, index)

              %{t | indexes: indexes}
          end

        {types, refs} =
          Enum.reduce(referenced, {t.types, t.refs}, fn col, {types, refs} ->
            left = MapSet.delete(Map.fetch!(refs, col), shape_id)

            if MapSet.size(left) == 0,
              do: {Map.delete(types, col), Map.delete(refs, col)},
              else: {types, Map.put(refs, col, left)}
          end)

        t = %{t | types: types, refs: refs, shape_ids: MapSet.delete(t.shape_ids, shape_id)}

        tables =
          if MapSet.size(t.shape_ids) == 0,
            do: Map.delete(filter.tables, table),
            else: Map.put(filter.tables, table, t)

        %{filter | tables: tables, shapes: shapes}
    end
  end

  @doc "The ids of the shapes `change` affects."
  @spec affected_shapes(t, change()) :: MapSet.t()
  def affected_shapes(%__MODULE__{} = filter, change) do
    case change do
      {:insert, table, record} ->
        route(filter, table, record)

      {:delete, table, old_record} ->
        route(filter, table, old_record)

      {:update, table, old_record, record} ->
        MapSet.union(route(filter, table, old_record), route(filter, table, record))

      {:truncate, table} ->
        case filter.tables do
          %{^table => t} -> t.shape_ids
          _ -> MapSet.new()
        end

      other ->
        raise ArgumentError,
              "expected an :insert, :delete, :update or :truncate change, got: " <>
                inspect(other)
    end
  end

  @doc "Every shape id in the filter."
  @spec all_shape_ids(t) :: MapSet.t()
  def all_shape_ids(%__MODULE__{shapes: shapes}), do: shapes |> Map.keys() |> MapSet.new()

  @doc "Which kind of index serves `column` of `table` (`:map`, `:lsm`), or `nil` if none."
  @spec index_kind(t, table(), String.t()) :: :map | :lsm | nil
  def index_kind(%__MODULE__{tables: tables}, table, column) do
    case get_in(tables, [table, :indexes, column]) do
      %EqualityIndex{} -> :map
      %LsmEqualityIndex{} -> :lsm
      nil -> nil
    end
  end

  defp route(filter, table, record) when is_map(record) do
    case filter.tables do
      %{^table => t} ->
        {row, bad} = parse_record(t.types, record)
        acc = Enum.reduce(bad, MapSet.new(), &MapSet.union(&2, Map.fetch!(t.refs, &1)))

        acc =
          Enum.reduce(t.indexes, acc, fn {col, index}, acc ->
            case row do
              %{^col => nil} -> acc
              _ -> MapSet.union(acc, Index.affected_shapes(index, col, row, filter.shapes))
            end
          end)

        Enum.reduce(t.scans, acc, fn {shape_id, where}, acc ->
          if Expr.matches?(where, row), do: MapSet.put(acc, shape_id), else: acc
        end)

      _ ->
        MapSet.new()
    end
  end

  defp route(_filter, _table, record),
    do: raise(ArgumentError, "a record is a map of column => text, got: #{inspect(record)}")

  # The referenced columns of `record` parsed by type; NULL, missing and unparseable are nil,
  # and the unparseable ones are listed.
  defp parse_record(types, record) do
    Enum.reduce(types, {%{}, []}, fn {col, type}, {row, bad} ->
      case Map.get(record, col) do
        nil ->
          {Map.put(row, col, nil), bad}

        text when is_binary(text) ->
          case ColumnType.parse(type, text) do
            {:ok, value} -> {Map.put(row, col, value), bad}
            :error -> {Map.put(row, col, nil), [col | bad]}
          end

        other ->
          raise ArgumentError,
                "record values are Postgres text or nil, got #{inspect(other)} for #{inspect(col)}"
      end
    end)
  end

  # An LSM index drops a whole shape by handle, so its shapes do not keep their values on the
  # BEAM (`nil` in the plan): nothing per value stays in Elixir.
  defp remove_from_index(%LsmEqualityIndex{} = index, nil, shape_id, residual),
    do: LsmEqualityIndex.drop_shape(index, shape_id, residual)

  defp remove_from_index(index, values, shape_id, residual),
    do: Index.remove_shape_many(index, values, shape_id, residual)

  # A shape indexed by an LSM index keeps no values in its plan.
  defp put_shape(
         filter,
         shape_id,
         %{table: table, plan: {:index, col, _values, residual}} = entry
       ) do
    entry =
      case filter.tables[table].indexes[col] do
        %LsmEqualityIndex{} -> %{entry | plan: {:index, col, nil, residual}}
        _ -> entry
      end

    %{filter | shapes: Map.put(filter.shapes, shape_id, entry)}
  end

  defp put_shape(filter, shape_id, entry),
    do: %{filter | shapes: Map.put(filter.shapes, shape_id, entry)}

  # Right after an :auto switch of `col`'s index to LSM, its shapes drop their values.
  defp forget_lsm_values(filter, table, col) do
    index = filter.tables[table].indexes[col]

    Enum.reduce(Index.all_shape_ids(index), filter, fn shape_id, filter ->
      put_shape(filter, shape_id, filter.shapes[shape_id])
    end)
  end

  defp new_index(%{mode: :lsm, lsm_options: opts}), do: LsmEqualityIndex.new(opts)
  defp new_index(_filter), do: EqualityIndex.new()

  defp maybe_promote(%{mode: :auto} = filter, %EqualityIndex{} = index) do
    if EqualityIndex.key_count(index) > filter.auto_threshold,
      do: LsmEqualityIndex.from_entries(EqualityIndex.entries(index), filter.lsm_options),
      else: index
  end

  defp maybe_promote(_filter, index), do: index

  # SQL text becomes a tree (`LsmIndex.Where.parse/2`); a tree is taken as it is.
  defp parsed!(sql, columns) when is_binary(sql) do
    case LsmIndex.Where.parse(sql, columns) do
      {:ok, tree} ->
        tree

      {:error, {:invalid_where, position, message}} ->
        raise ArgumentError, "WHERE #{inspect(sql)}: at byte #{position}: #{message}"
    end
  end

  defp parsed!(tree, _columns), do: tree
end
