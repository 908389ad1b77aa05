defmodule LsmIndex.Filter do
  @moduledoc """
  Routes WAL changes to the shapes they affect, for many tables, through equality indexes that
  are either Elixir maps or `LsmIndex` NIF resources (the feature flag).

  WHERE semantics are the Rust predicate engine's (`lsm_index_core::predicate`, the one
  `LsmIndex.ShapeRouter` runs), reached through `LsmIndex.Filter.Predicate`: the filter holds
  no evaluator or value parser of its own, so filter and router cannot disagree.

  ## Layout

  Per table: the types of the columns its shapes refer to, with the record parser built from
  them (a NIF resource), one equality index per indexed column
  (`LsmIndex.Filter.Index.Protocol`, keyed by value keys: binaries from the core's key
  encoder), the scanned shapes (no index plan: checked on every change of the table), and
  for each column the shapes that refer to it. A shape's WHERE (SQL text, or an
  `LsmIndex.Filter.Expr` tree rendered to SQL) is compiled once, in Rust, when added: into
  index plans (its most selective equality conjunct — `=`, `IN`, or an `OR` of those on one
  column — or, without one, an equality in every branch of its ORs: then one plan per
  column), and a residual (a NIF resource, `nil` when the plan says it all). The shape goes
  into each plan's column index with its keys and residual. A clause (or a rendered tree) is
  at most 1 MiB; one the engine refuses raises `ArgumentError`.

  ## Routing a change

  Records carry Postgres text values. Per record, one NIF call parses the columns the table's
  shapes refer to (typed values, the value keys of the indexed columns, and which columns did
  not parse), the indexes give their candidates for those keys, and one more NIF call (when
  there is any residual to check) evaluates every candidate's and every scanned shape's
  residual on the parsed row. A value
  key is one per SQL value, so `" 7"` in an `:int8` column meets the literal `7`. WHERE
  clauses use SQL three-valued logic: a shape matches only when its WHERE is true. A value
  that cannot be parsed routes conservatively: every shape of the table that refers to that
  column is affected (a shape that does not refer to it cannot depend on it); so does a
  residual whose evaluation fails. Updates affect the union of the shapes of the old and the
  new record; a truncate affects every shape of its table.

  ## Options (`new/1`)

    * `:index` - `:map` (`LsmIndex.Filter.EqualityIndex`), `:lsm`
      (`LsmIndex.Filter.LsmEqualityIndex`) or `:auto` (a map until an index holds more than
      `:auto_threshold` values, then LSM; it never goes back). Default: the
      `config :lsm_index, :equality_index` setting, else `:map`.
    * `:auto_threshold` - values per index at which `:auto` switches (default `10_000`, or
      `config :lsm_index, :auto_threshold`)
    * `:lsm_options` - options for `LsmIndex.new/1` of each LSM index (default `[]`, or
      `config :lsm_index, :lsm_options`)
    * `:lc_ctype` - how `lower`, `upper` and `ILIKE` fold case, as PostgreSQL does under the
      database's `LC_CTYPE`: `:utf8` (default: every character, one to one) or `:c` (ASCII
      letters only)

  The filter is a value: each function returns the new filter. With `index: :map` every
  copy stays valid (a persistent value). LSM indexes (`:lsm`, and `:auto` once switched)
  are resources shared by all copies, so `:lsm` filters are single-use values: keep only the
  latest. Every call on an `:lsm` filter that a later `add_shape/3` or `remove_shape/2`
  superseded raises `ArgumentError` instead of answering wrongly — whether or not it holds
  an indexed shape yet (a filter-wide generation, one atomic read per call); a call that
  changes nothing (removing an unknown id, a shape refused with `ArgumentError`) supersedes
  nothing. An `:auto` filter is a persistent value until an index switches; from then on a
  copy older than a change to a switched index raises when it uses that index (see
  `LsmIndex.Filter.LsmEqualityIndex`).
  """

  alias LsmIndex.Filter.{ColumnType, EqualityIndex, Expr, LsmEqualityIndex, Predicate}
  alias LsmIndex.Filter.Index.Protocol, as: Index

  # generations (`:lsm` only): an :atomics counter shared by every copy, bumped by each change;
  # generation: the count this copy was made at (a smaller one than the counter's: superseded)
  defstruct mode: :map,
            auto_threshold: 10_000,
            lsm_options: [],
            lc_ctype: :utf8,
            tables: %{},
            shapes: %{},
            generations: nil,
            generation: 0

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
  # schema: the record parser of `types`, giving the keys of the `indexed` columns in order;
  # schema_of: what it was built from; residuals: how many shapes have one (without any, a
  # record's parsed row is never needed)
  @empty_table %{
    types: %{},
    refs: %{},
    indexes: %{},
    scans: %{},
    shape_ids: MapSet.new(),
    residuals: 0,
    schema: nil,
    indexed: [],
    schema_of: nil
  }

  @doc "An empty filter; see the module doc for options."
  @spec new(keyword()) :: t
  def new(opts \\ []) do
    opts =
      Keyword.validate!(opts,
        index: Application.get_env(:lsm_index, :equality_index, :map),
        auto_threshold: Application.get_env(:lsm_index, :auto_threshold, 10_000),
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

    %__MODULE__{
      mode: mode,
      auto_threshold: threshold,
      lsm_options: opts[:lsm_options],
      lc_ctype: LsmIndex.Where.lc_ctype!(opts[:lc_ctype]),
      generations: if(mode == :lsm, do: :atomics.new(1, signed: false))
    }
  end

  @doc "Adds (or replaces) shape `shape_id`; raises `ArgumentError` for a malformed shape."
  @spec add_shape(t, term(), shape()) :: t
  def add_shape(%__MODULE__{} = filter, shape_id, %{table: table, columns: columns} = shape) do
    current!(filter)
    columns = ColumnType.columns!(columns)

    %{plans: plans, residual: residual, columns: referenced} =
      Predicate.compile!(
        Map.get(shape, :where),
        columns,
        Map.get(shape, :params, []),
        filter.lc_ctype
      )

    columns = Map.new(columns)
    # every check before the first change: a refused shape leaves the filter as it was
    check_types!(filter, table, shape_id, referenced, columns)
    filter = filter |> without_shape(shape_id) |> advance!()
    t = Map.get(filter.tables, table, @empty_table)
    types = Enum.reduce(referenced, t.types, &Map.put(&2, &1, Map.fetch!(columns, &1)))

    refs =
      Enum.reduce(referenced, t.refs, fn col, refs ->
        Map.update(refs, col, MapSet.new([shape_id]), &MapSet.put(&1, shape_id))
      end)

    t = %{
      t
      | types: types,
        refs: refs,
        shape_ids: MapSet.put(t.shape_ids, shape_id),
        residuals: t.residuals + if(residual == nil, do: 0, else: 1)
    }

    # no plan: scanned; plans whose keys are all NULL: never found, as never true
    {t, plans, switched} =
      case plans do
        [] ->
          {%{t | scans: Map.put(t.scans, shape_id, residual)}, :scan, []}

        plans ->
          plans = Enum.reject(plans, &match?({_col, []}, &1))

          {t, switched} =
            Enum.reduce(plans, {t, []}, fn {col, keys}, {t, switched} ->
              index = Map.get_lazy(t.indexes, col, fn -> new_index(filter) end)
              index = Index.add_shape_many(index, keys, shape_id, residual)
              promoted = maybe_promote(filter, index)
              switched = if promoted !== index, do: [col | switched], else: switched
              {%{t | indexes: Map.put(t.indexes, col, promoted)}, switched}
            end)

          {t, plans, switched}
      end

    filter = %{filter | tables: Map.put(filter.tables, table, with_schema(t))}
    entry = %{table: table, plans: plans, residual: residual, columns: referenced}
    filter = put_shape(filter, shape_id, entry)
    Enum.reduce(switched, filter, &forget_lsm_values(&2, table, &1))
  end

  def add_shape(%__MODULE__{}, _shape_id, shape),
    do:
      raise(
        ArgumentError,
        "a shape is a map with :table, :columns and :where, got: #{inspect(shape)}"
      )

  # A column has one type across the shapes of a table: raises when a column the new shape
  # refers to (`columns`: its types) has another type in the table's other shapes (the shape
  # with the same id, which the new one replaces, aside).
  defp check_types!(filter, table, shape_id, referenced, columns) do
    t = Map.get(filter.tables, table, @empty_table)

    for col <- referenced,
        other = t.types[col],
        other != nil and other != columns[col],
        MapSet.size(MapSet.delete(t.refs[col], shape_id)) > 0 do
      raise ArgumentError,
            "column #{inspect(col)} of #{inspect(table)} is #{ColumnType.name(other)} in " <>
              "other shapes, not #{ColumnType.name(columns[col])}"
    end

    :ok
  end

  @doc "Removes shape `shape_id`; an unknown id leaves the filter as it is."
  @spec remove_shape(t, term()) :: t
  def remove_shape(%__MODULE__{} = filter, shape_id) do
    current!(filter)

    if Map.has_key?(filter.shapes, shape_id),
      do: filter |> without_shape(shape_id) |> advance!(),
      else: filter
  end

  # `filter` without shape `shape_id` (the caller checked the copy is current).
  defp without_shape(filter, shape_id) do
    case Map.pop(filter.shapes, shape_id) do
      {nil, _} ->
        filter

      {%{table: table, plans: plans, residual: residual, columns: referenced}, shapes} ->
        t = Map.fetch!(filter.tables, table)

        t =
          case plans do
            :scan ->
              %{t | scans: Map.delete(t.scans, shape_id)}

            plans ->
              Enum.reduce(plans, t, fn {col, keys}, t ->
                index = remove_from_index(Map.fetch!(t.indexes, col), keys, shape_id, residual)

                indexes =
                  if Index.empty?(index),
                    do: Map.delete(t.indexes, col),
                    else: Map.put(t.indexes, col, index)

                %{t | indexes: indexes}
              end)
          end

        {types, refs} =
          Enum.reduce(referenced, {t.types, t.refs}, fn col, {types, refs} ->
            left = MapSet.delete(Map.fetch!(refs, col), shape_id)

            if MapSet.size(left) == 0,
              do: {Map.delete(types, col), Map.delete(refs, col)},
              else: {types, Map.put(refs, col, left)}
          end)

        t = %{
          t
          | types: types,
            refs: refs,
            shape_ids: MapSet.delete(t.shape_ids, shape_id),
            residuals: t.residuals - if(residual == nil, do: 0, else: 1)
        }

        tables =
          if MapSet.size(t.shape_ids) == 0,
            do: Map.delete(filter.tables, table),
            else: Map.put(filter.tables, table, with_schema(t))

        %{filter | tables: tables, shapes: shapes}
    end
  end

  @doc "The ids of the shapes `change` affects."
  @spec affected_shapes(t, change()) :: MapSet.t()
  def affected_shapes(%__MODULE__{} = filter, change) do
    current!(filter)

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
  def all_shape_ids(%__MODULE__{shapes: shapes} = filter) do
    current!(filter)
    shapes |> Map.keys() |> MapSet.new()
  end

  @doc "Which kind of index serves `column` of `table` (`:map`, `:lsm`), or `nil` if none."
  @spec index_kind(t, table(), String.t()) :: :map | :lsm | nil
  def index_kind(%__MODULE__{tables: tables} = filter, table, column) do
    current!(filter)

    case get_in(tables, [table, :indexes, column]) do
      %EqualityIndex{} -> :map
      %LsmEqualityIndex{} -> :lsm
      nil -> nil
    end
  end

  # An :lsm filter copy must be the latest (one atomic read); other modes are values.
  defp current!(%__MODULE__{generations: nil}), do: :ok

  defp current!(%__MODULE__{generations: gens, generation: gen}) do
    if :atomics.get(gens, 1) != gen, do: stale!()
    :ok
  end

  # The filter a change returns: for :lsm, the next generation, claimed from the latest copy
  # (every other copy is superseded from here on).
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

  # One record: parsed once (NIF), looked up in each indexed column's index, and every
  # residual of the candidates and the scanned shapes evaluated in one NIF call.
  defp route(filter, table, record) when is_map(record) do
    case filter.tables do
      %{^table => t} ->
        {row, keys, bad} = Predicate.row!(t.schema, record, t.residuals > 0)
        acc = Enum.reduce(bad, MapSet.new(), &MapSet.union(&2, Map.fetch!(t.refs, &1)))
        found = lookups(t.indexed, keys, t.indexes, {acc, [], 0})
        {acc, checks, count} = candidates(t.scans, found)

        case checks do
          [] ->
            acc

          checks ->
            {matched, errors} = Predicate.eval(row, checks, count)
            acc |> put_all(matched) |> put_all(errors)
        end

      _ ->
        MapSet.new()
    end
  end

  defp route(_filter, _table, record),
    do: raise(ArgumentError, "a record is a map of column => text, got: #{inspect(record)}")

  # the candidates of each indexed column's key (nil: NULL, missing or unparseable)
  defp lookups([_col | cols], [nil | keys], indexes, found),
    do: lookups(cols, keys, indexes, found)

  defp lookups([col | cols], [key | keys], indexes, found) do
    found = indexes |> Map.fetch!(col) |> Index.candidates(key) |> candidates(found)
    lookups(cols, keys, indexes, found)
  end

  defp lookups([], [], _indexes, found), do: found

  # (most lookups find nothing: no fold over an empty map or list)
  defp candidates([], found), do: found
  defp candidates(pairs, found) when pairs == %{}, do: found
  defp candidates(pairs, found), do: Enum.reduce(pairs, found, &candidate/2)

  # {matched, residuals to check, their count}: a shape without a residual matches as found
  defp candidate({shape_id, nil}, {acc, checks, count}),
    do: {MapSet.put(acc, shape_id), checks, count}

  defp candidate({shape_id, residual}, {acc, checks, count}),
    do: {acc, [{shape_id, residual} | checks], count + 1}

  defp put_all(set, []), do: set
  defp put_all(set, ids), do: Enum.reduce(ids, set, &MapSet.put(&2, &1))

  # `t` with a record parser for its current columns and indexes (rebuilt when they changed).
  defp with_schema(%{types: types, indexes: indexes} = t) do
    indexed = indexes |> Map.keys() |> Enum.sort()

    if t.schema_of == {types, indexed},
      do: t,
      else: %{
        t
        | schema: Predicate.schema(types, indexed),
          indexed: indexed,
          schema_of: {types, indexed}
      }
  end

  # An LSM index drops a whole shape by handle, so its shapes do not keep their keys on the
  # BEAM (`nil` in the plan): nothing per key stays in Elixir.
  defp remove_from_index(%LsmEqualityIndex{} = index, nil, shape_id, residual),
    do: LsmEqualityIndex.drop_shape(index, shape_id, residual)

  defp remove_from_index(index, keys, shape_id, residual),
    do: Index.remove_shape_many(index, keys, shape_id, residual)

  # A shape's plans on LSM indexes keep no keys.
  defp put_shape(filter, shape_id, %{table: table, plans: plans} = entry) when is_list(plans) do
    indexes = filter.tables[table].indexes

    plans =
      Enum.map(plans, fn {col, keys} ->
        case indexes do
          %{^col => %LsmEqualityIndex{}} -> {col, nil}
          _ -> {col, keys}
        end
      end)

    %{filter | shapes: Map.put(filter.shapes, shape_id, %{entry | plans: plans})}
  end

  defp put_shape(filter, shape_id, entry),
    do: %{filter | shapes: Map.put(filter.shapes, shape_id, entry)}

  # Right after an :auto switch of `col`'s index to LSM, its shapes drop their keys there.
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
end
