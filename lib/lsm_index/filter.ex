defmodule LsmIndex.Filter do
  @moduledoc """
  Routes WAL changes to the shapes they affect, for many tables: the drop-in for the sync
  service's filter, with its equality indexes either Elixir maps (`index: :map`, the
  baseline) or one Rust router set (`index: :lsm`, the feature flag).

  WHERE semantics are the Rust predicate engine's (`lsm_index_core::predicate`, the one
  `LsmIndex.ShapeRouter` runs) in both modes, so filter and router cannot disagree. A
  shape's WHERE (SQL text, or an `LsmIndex.Filter.Expr` tree rendered to SQL) is compiled
  once, in Rust, when added, against the shape's `columns:`; a clause (or a rendered tree)
  is at most 1 MiB; one the engine refuses raises `ArgumentError`.

  ## Semantics

  Records carry Postgres text values. WHERE clauses use SQL three-valued logic: a shape
  matches only when its WHERE is true; a shape whose residual fails to evaluate (an error
  PostgreSQL would raise) is affected. A value that cannot be parsed for its column's type
  routes conservatively: every shape found through that column (an index on it: any value
  could have found the shape) is affected, and so is every shape that reads it and is a
  candidate of the record (found through another column's value) or scanned; a shape the
  record's other values rule out (its indexes do not find it) cannot match whatever the
  value is, nor can one that does not refer to the column. Updates affect the union of the
  shapes of the old and the new record; a truncate affects every shape of its table. A
  column has one type across the shapes of a table that refer to it: a shape declaring
  another raises. Record values are Postgres text or `nil`; anything else raises
  `ArgumentError` when it is read: with `:map` every column the table's shapes read, with
  `:lsm` the columns a route reads (a change no shape is indexed on reads only the indexed
  ones; see `LsmIndex.ShapeRouter`).

  ## Data path

    * `:map` - per table, one `LsmIndex.Filter.EqualityIndex` (a map `value key => shapes`)
      per indexed column, the scanned shapes, and a record parser (a NIF resource). Per
      record: one NIF call parses the referenced columns into typed values and value keys,
      the maps give the candidates, one more NIF call evaluates their residuals. Everything
      per shape lives on the BEAM heap; the filter is a persistent value.
    * `:lsm` - one Rust router set: per table an open-schema `ShapeRouter` (presence filter,
      an `LsmIndex` of `(column, value) => shapes`, residual bytecode). Per change: one NIF
      call parses the rows, probes every indexed column, evaluates the candidates and
      returns the ids; `affected_shapes_many/2` routes a whole transaction per call. The
      BEAM holds nothing per shape (integer ids `0..2^31-1` are their own handles; other
      ids are interned in Rust by their bytes).
    * `:auto` - each table starts as `:map` and moves to the router set when it holds more
      than `:auto_threshold` shapes (it never moves back).

  ## Options (`new/1`)

    * `:index` - `:map`, `:lsm` or `:auto`. Default: the `config :lsm_index,
      :equality_index` setting, else `:map`.
    * `:auto_threshold` - shapes per table at which `:auto` moves a table to the router set
      (default `100`, or `config :lsm_index, :auto_threshold`): the router set is faster per
      change at every size measured, but a table there costs ~20 KiB before its first shape
      (its router and shape index), more than a map table below ~75 shapes
      (`mix bench --only filter`; DESIGN.md)
    * `:lsm_options` - `LsmIndex.new/1` options of each table's shape index in the router
      set (default `[]`, or `config :lsm_index, :lsm_options`)
    * `:lc_ctype` - how `lower`, `upper` and `ILIKE` fold case, as PostgreSQL does under the
      database's `LC_CTYPE`: `:utf8` (default: every character, one to one) or `:c` (ASCII
      letters only)

  The filter is a value: each function returns the new filter. With `index: :map` every
  copy stays valid (a persistent value). The router set is shared by all copies, so `:lsm`
  filters are single-use values: keep only the latest. Every call on an `:lsm` filter that
  a later `add_shape/3` or `remove_shape/2` superseded raises `ArgumentError` instead of
  answering wrongly (a filter-wide generation, one atomic read per call); a call that
  changes nothing (removing an unknown id, a shape refused with `ArgumentError`) supersedes
  nothing. An `:auto` filter is a persistent value until its first table moves to the
  router set, and single-use from then on.
  """

  alias LsmIndex.Filter.{ColumnType, Expr, MapTables, Predicate, RouterSet}

  @default_threshold 100

  # maps: the map-mode tables; set: the router set (`:lsm`, and `:auto` once a table
  # moved); generations (single-use copies): an :atomics counter shared by every copy, bumped
  # by each change; generation: the count this copy was made at (a smaller one than the
  # counter's: superseded); columns: the last shape's `columns:` term and what it checked to
  # (shapes of one table usually pass the same term: checked once)
  defstruct mode: :map,
            auto_threshold: @default_threshold,
            lsm_options: [],
            lc_ctype: :utf8,
            maps: %MapTables{},
            set: nil,
            generations: nil,
            generation: 0,
            columns: nil

  @typedoc "A filter."
  @type t :: %__MODULE__{}
  @typedoc "A table name, e.g. `{\"public\", \"todos\"}`."
  @type table :: term()
  @typedoc """
  A shape: its table, the types of its columns, its WHERE (a tree or SQL text) and, for SQL
  text with `$1`, `$2`, ..., their values (`:params`: strings as PostgreSQL text, typed by
  where each is used, or `nil` for NULL; default `[]`).
  """
  @type shape :: %{
          required(:table) => table(),
          required(:columns) => ColumnType.columns(),
          required(:where) => Expr.t() | String.t(),
          optional(:params) => [String.t() | nil]
        }
  @typedoc "A WAL change with Postgres text values (`nil` for NULL)."
  @type change ::
          {:insert, table(), map()}
          | {:delete, table(), map()}
          | {:update, table(), map(), map()}
          | {:truncate, table()}

  @modes [:map, :lsm, :auto]

  @doc "An empty filter; see the module doc for options."
  @spec new(keyword()) :: t
  def new(opts \\ []) do
    opts =
      Keyword.validate!(opts,
        index: Application.get_env(:lsm_index, :equality_index, :map),
        auto_threshold: Application.get_env(:lsm_index, :auto_threshold, @default_threshold),
        lc_ctype: :utf8,
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

    filter = %__MODULE__{
      mode: mode,
      auto_threshold: threshold,
      lsm_options: opts[:lsm_options],
      lc_ctype: LsmIndex.Where.lc_ctype!(opts[:lc_ctype])
    }

    if mode == :lsm, do: with_set(filter), else: filter
  end

  # `filter` with a router set (made now if it had none), single-use from here on.
  defp with_set(%__MODULE__{set: nil} = filter) do
    set = RouterSet.new(filter.lc_ctype, LsmIndex.options!(filter.lsm_options))
    gens = :atomics.new(1, signed: false)
    :atomics.put(gens, 1, filter.generation)
    %{filter | set: set, generations: gens}
  end

  defp with_set(filter), do: filter

  @doc "Adds (or replaces) shape `shape_id`; raises `ArgumentError` for a malformed shape."
  @spec add_shape(t, term(), shape()) :: t
  def add_shape(%__MODULE__{} = filter, shape_id, %{table: table, columns: _} = shape) do
    current!(filter)

    if in_set?(filter, table),
      do: add_to_set(filter, shape_id, shape),
      else: add_to_maps(filter, shape_id, shape)
  end

  def add_shape(%__MODULE__{}, _shape_id, shape),
    do:
      raise(
        ArgumentError,
        "a shape is a map with :table, :columns and :where, got: #{inspect(shape)}"
      )

  @doc """
  `add_shape/3` for each `{shape_id, shape}` of the list, in order; the filter after the last.
  Raises as `add_shape/3` at the first refused shape: a `:map` filter you hold is then
  unchanged (a value), but on a single-use filter (`:lsm`) the shapes before it were added
  and the filter you hold is superseded, so add shapes one at a time with `add_shape/3` when
  you need to go on after a refusal.
  """
  @spec add_shapes(t, [{term(), shape()}]) :: t
  def add_shapes(%__MODULE__{} = filter, shapes) when is_list(shapes),
    do: Enum.reduce(shapes, filter, fn {id, shape}, f -> add_shape(f, id, shape) end)

  # whether `table`'s shapes live in the router set
  defp in_set?(%__MODULE__{mode: :lsm}, _table), do: true
  defp in_set?(%__MODULE__{set: nil}, _table), do: false
  defp in_set?(%__MODULE__{set: set}, table), do: RouterSet.has_table?(set, table)

  defp add_to_maps(filter, shape_id, %{table: table} = shape) do
    {columns, _native, types} = checked = columns!(filter, shape.columns)
    filter = %{filter | columns: {shape.columns, checked}}
    params = Map.get(shape, :params, [])
    compiled = Predicate.compile!(Map.get(shape, :where), columns, params, filter.lc_ctype)
    # every check before the first change: a refused shape leaves the filter as it was
    MapTables.check_types!(filter.maps, table, shape_id, compiled.columns, types)
    filter = filter |> without_shape(shape_id) |> advance!()
    source = if filter.mode == :auto, do: shape
    maps = MapTables.add(filter.maps, shape_id, table, compiled, types, source)
    maybe_move(%{filter | maps: maps}, table)
  end

  defp add_to_set(filter, shape_id, %{table: table} = shape) do
    filter = with_set(filter)
    {_columns, native, types} = checked = columns!(filter, shape.columns)
    filter = %{filter | columns: {shape.columns, checked}}
    where = Map.get(shape, :where)
    {sql, spans} = if is_binary(where), do: {where, nil}, else: Expr.to_sql!(where)
    params = LsmIndex.Where.params!(Map.get(shape, :params, []))

    unless String.valid?(sql), do: refused!(where, spans, 0, "the clause is not UTF-8 text")

    case RouterSet.add(filter.set, shape_id, table, sql, params, native) do
      {:ok, set} ->
        maps =
          if MapTables.has_shape?(filter.maps, shape_id),
            do: MapTables.remove(filter.maps, shape_id),
            else: filter.maps

        advance!(%{filter | set: set, maps: maps})

      {:error, {:invalid_where, position, message}} ->
        refused!(where, spans, position, message)

      {:error, {:column_type_conflict, column, had}} ->
        raise ArgumentError,
              "column #{inspect(column)} of #{inspect(table)} is #{had} in other shapes, " <>
                "not #{ColumnType.name(types[column])}"

      {:error, {kind, message}} ->
        raise LsmIndex.Error, reason: kind, message: message

      {:error, reason} ->
        raise LsmIndex.Error, reason: reason, message: "#{reason}"
    end
  end

  # the errors of `Predicate.compile!/4`, word for word
  defp refused!(sql, nil, position, message),
    do: raise(ArgumentError, "WHERE #{inspect(sql)}: at byte #{position}: #{message}")

  defp refused!(tree, spans, position, message) do
    case Expr.node_at(spans, position) do
      nil -> raise ArgumentError, "WHERE #{inspect(tree)}: #{message}"
      node -> raise ArgumentError, "WHERE node #{inspect(node)}: #{message}"
    end
  end

  # `{columns, native columns, types}` of a shape's `columns:` (checked), reusing the last
  # shape's when it passed the same term
  defp columns!(%__MODULE__{columns: {term, checked}}, term), do: checked

  defp columns!(_filter, term) do
    columns = ColumnType.columns!(term)
    {columns, LsmIndex.Where.native_columns!(columns), Map.new(columns)}
  end

  # An :auto filter's map table past the threshold moves to the router set with every shape.
  defp maybe_move(%__MODULE__{mode: :auto} = filter, table) do
    if MapTables.shape_count(filter.maps, table) > filter.auto_threshold do
      sources = MapTables.sources(filter.maps, table)
      filter = with_set(filter)

      Enum.reduce(sources, filter, fn {id, shape}, f ->
        f = add_to_set(f, id, shape)
        %{f | maps: MapTables.remove(f.maps, id)}
      end)
    else
      filter
    end
  end

  defp maybe_move(filter, _table), do: filter

  @doc "Removes shape `shape_id`; an unknown id leaves the filter as it is."
  @spec remove_shape(t, term()) :: t
  def remove_shape(%__MODULE__{} = filter, shape_id) do
    current!(filter)

    cond do
      MapTables.has_shape?(filter.maps, shape_id) ->
        advance!(%{filter | maps: MapTables.remove(filter.maps, shape_id)})

      filter.set != nil and RouterSet.remove(filter.set, shape_id) ->
        advance!(filter)

      true ->
        filter
    end
  end

  # `filter` without shape `shape_id` anywhere (the caller checked the copy is current).
  defp without_shape(filter, shape_id) do
    if filter.set != nil, do: RouterSet.remove(filter.set, shape_id)
    %{filter | maps: MapTables.remove(filter.maps, shape_id)}
  end

  @doc "The ids of the shapes `change` affects."
  @spec affected_shapes(t, change()) :: MapSet.t()
  def affected_shapes(%__MODULE__{} = filter, change) do
    current!(filter)
    affected(filter, change)
  end

  @doc """
  `affected_shapes/2` of each change of a transaction, in order: with `:lsm`, one NIF call
  per ~0.5 ms of routing rather than one per change.

  With `keep: true`, `{affected, kept}` for each change: `kept` the shapes of `affected`
  whose WHERE holds on the record after the change — an insert's all, a delete's and a
  truncate's none, an update's those its new record matches (the update stays in them or
  moves in; it moves out of the others). `:lsm` answers both from the one route; `:map` and
  `:auto` route each update's new record again.
  """
  @spec affected_shapes_many(t, [change()], keyword()) ::
          [MapSet.t()] | [{MapSet.t(), MapSet.t()}]
  def affected_shapes_many(filter, changes, opts \\ [])

  def affected_shapes_many(%__MODULE__{} = filter, changes, opts) when is_list(changes) do
    current!(filter)
    keep = Keyword.validate!(opts, keep: false)[:keep] || false

    unless is_boolean(keep),
      do: raise(ArgumentError, "keep: true or false, got: #{inspect(keep)}")

    case filter do
      %{mode: :lsm, set: set} ->
        LsmIndex.Telemetry.route_many(
          filter,
          changes,
          fn -> lsm_many(set, changes, keep) end,
          :filter
        )

      _ when keep ->
        Enum.map(changes, fn change ->
          affected = affected(filter, change)
          {affected, kept(filter, change, affected)}
        end)

      _ ->
        Enum.map(changes, &affected(filter, &1))
    end
  end

  def affected_shapes_many(%__MODULE__{}, changes, _opts),
    do: raise(ArgumentError, "changes must be a list, got: #{inspect(changes)}")

  defp lsm_many(set, changes, false),
    do: set |> RouterSet.route_many(changes) |> Enum.map(&MapSet.new/1)

  defp lsm_many(set, changes, true) do
    for {ids, kept} <- RouterSet.route_many(set, changes, true),
        do: {MapSet.new(ids), MapSet.new(kept)}
  end

  # the shapes the record after `change` matches (the map path: an update's new record
  # routed again)
  defp kept(_filter, {:insert, _table, _record}, affected), do: affected
  defp kept(filter, {:update, table, _old, new}, _), do: affected(filter, {:insert, table, new})
  defp kept(_filter, _delete_or_truncate, _affected), do: MapSet.new()

  defp affected(%__MODULE__{mode: :lsm} = filter, change),
    do: LsmIndex.Telemetry.route(filter, change, &lsm_affected/2, :filter)

  defp affected(filter, change) do
    case change do
      {:insert, table, record} ->
        route(filter, table, record, change)

      {:delete, table, old_record} ->
        route(filter, table, old_record, change)

      {:update, table, old_record, record} ->
        if in_set?(filter, table),
          do: MapSet.new(RouterSet.route(filter.set, change)),
          else:
            MapSet.union(
              MapTables.route(filter.maps, table, old_record),
              MapTables.route(filter.maps, table, record)
            )

      {:truncate, table} ->
        if in_set?(filter, table),
          do: MapSet.new(RouterSet.route(filter.set, change)),
          else: MapTables.truncate(filter.maps, table)

      other ->
        raise ArgumentError,
              "expected an :insert, :delete, :update or :truncate change, got: " <>
                inspect(other)
    end
  end

  defp lsm_affected(%__MODULE__{set: set}, change), do: MapSet.new(RouterSet.route(set, change))

  defp route(filter, table, record, change) do
    if in_set?(filter, table),
      do: MapSet.new(RouterSet.route(filter.set, change)),
      else: MapTables.route(filter.maps, table, record)
  end

  @doc "Every shape id in the filter."
  @spec all_shape_ids(t) :: MapSet.t()
  def all_shape_ids(%__MODULE__{} = filter) do
    current!(filter)
    in_set = if filter.set, do: RouterSet.shape_ids(filter.set), else: []
    MapSet.new(MapTables.shape_ids(filter.maps) ++ in_set)
  end

  @doc """
  Which kind of index serves `column` of `table` (`:map`, `:lsm`), or `nil` if none (no
  shape of the table is found through the column).
  """
  @spec index_kind(t, table(), String.t()) :: :map | :lsm | nil
  def index_kind(%__MODULE__{} = filter, table, column) do
    current!(filter)

    cond do
      in_set?(filter, table) -> if RouterSet.indexed?(filter.set, table, column), do: :lsm
      MapTables.indexed?(filter.maps, table, column) -> :map
      true -> nil
    end
  end

  @doc """
  How many shapes of `table` are found through an index (`:indexed`) and how many are
  evaluated on every change of the table (`:scanned`: no equality conjunct to index).
  """
  @spec shape_counts(t, table()) :: %{indexed: non_neg_integer(), scanned: non_neg_integer()}
  def shape_counts(%__MODULE__{} = filter, table) do
    current!(filter)

    if in_set?(filter, table),
      do: RouterSet.shape_counts(filter.set, table),
      else: MapTables.shape_counts(filter.maps, table)
  end

  @doc """
  The routing counters of `table`'s router in the router set (`LsmIndex.ShapeRouter.metrics/1`'s
  map: candidates, evaluations, presence probes, ...), or `nil` for a table not there.
  """
  @spec metrics(t, table()) :: map() | nil
  def metrics(%__MODULE__{} = filter, table) do
    current!(filter)
    if filter.set, do: RouterSet.metrics(filter.set, table)
  end

  @doc """
  The statistics of `table`'s shape index in the router set (`LsmIndex.stats/1`'s map), or
  `nil` for a table with no indexed shape there.
  """
  @spec index_stats(t, table()) :: map() | nil
  def index_stats(%__MODULE__{} = filter, table) do
    current!(filter)
    if filter.set, do: RouterSet.index_stats(filter.set, table)
  end

  @doc "Waits until the router set's background compaction is idle (benchmarks, tests)."
  @spec wait_idle(t) :: :ok
  def wait_idle(%__MODULE__{} = filter) do
    current!(filter)
    if filter.set, do: RouterSet.wait_idle(filter.set), else: :ok
  end

  # A single-use copy must be the latest (one atomic read); other copies are values.
  defp current!(%__MODULE__{generations: nil}), do: :ok

  defp current!(%__MODULE__{generations: gens, generation: gen}) do
    if :atomics.get(gens, 1) != gen, do: stale!()
    :ok
  end

  # The filter a change returns: for single-use copies, the next generation, claimed from the
  # latest copy (every other copy is superseded from here on).
  defp advance!(%__MODULE__{generations: nil} = filter), do: filter

  defp advance!(%__MODULE__{generations: gens, generation: gen} = filter) do
    case :atomics.compare_exchange(gens, 1, gen, gen + 1) do
      :ok -> %{filter | generation: gen + 1}
      _ -> stale!()
    end
  end

  defp stale!,
    do:
      raise(
        ArgumentError,
        "this LsmIndex.Filter was superseded by a later add_shape/remove_shape: :lsm " <>
          "filters are single-use values (keep only the latest: each change returns the " <>
          "one to use next)"
      )
end
