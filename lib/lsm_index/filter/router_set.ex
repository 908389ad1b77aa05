defmodule LsmIndex.Filter.RouterSet do
  @moduledoc false
  # The tables of `LsmIndex.Filter` with `index: :lsm` (and `:auto` tables past the
  # threshold): one Rust router set (`lsm_index_core::router::set`, the `router_set_*` NIFs)
  # holding an open-schema ShapeRouter per table. A change is one NIF call (a transaction
  # one call per ~0.5 ms slice): parse, presence filter, index, residuals, all in Rust; the
  # BEAM holds the set's reference and `numbers` (table => the set's table number), nothing
  # per shape.

  alias LsmIndex.Native

  defstruct [:ref, numbers: %{}]

  @type t :: %__MODULE__{ref: reference(), numbers: %{term() => non_neg_integer()}}

  # Longer clauses are compiled on a dirty scheduler.
  @dirty_bytes 16_384

  @doc "An empty set (`lc_ctype` checked; `index_opts` as `LsmIndex.options!/1` gives them)."
  def new(lc_ctype, index_opts) do
    case Native.router_set_new(lc_ctype, index_opts) do
      {:ok, ref} -> %__MODULE__{ref: ref}
      {:error, {kind, message}} -> raise LsmIndex.Error, reason: kind, message: message
    end
  end

  @doc "Whether `table` has a number in the set (it has or had shapes here)."
  def has_table?(%__MODULE__{numbers: numbers}, table), do: Map.has_key?(numbers, table)

  @doc """
  Adds (or replaces) shape `shape_id` of `table`: `{:ok, set}` or the NIF's error
  (`{:error, {:invalid_where, position, message}}`, `{:error, {:column_type_conflict,
  column, type}}`, ...). `native_columns` as `LsmIndex.Where.native_columns!/1` gives them.
  """
  def add(
        %__MODULE__{ref: ref, numbers: numbers} = set,
        shape_id,
        table,
        sql,
        params,
        native_columns
      ) do
    {n, numbers} =
      case numbers do
        %{^table => n} -> {n, numbers}
        _ -> {map_size(numbers), Map.put(numbers, table, map_size(numbers))}
      end

    reply =
      if byte_size(sql) > @dirty_bytes,
        do: Native.router_set_add_dirty(ref, n, shape_id, sql, params, native_columns),
        else:
          (case Native.router_set_add(ref, n, shape_id, sql, params, native_columns) do
             :wait -> Native.router_set_add_dirty(ref, n, shape_id, sql, params, native_columns)
             reply -> reply
           end)

    case reply do
      :ok -> {:ok, %{set | numbers: numbers}}
      error -> error
    end
  end

  @doc "Removes shape `shape_id`: whether it was here."
  def remove(%__MODULE__{ref: ref}, shape_id) do
    reply =
      case Native.router_set_remove(ref, shape_id) do
        :wait -> Native.router_set_remove_dirty(ref, shape_id)
        reply -> reply
      end

    case reply do
      found when is_boolean(found) -> found
      {:error, {kind, message}} -> raise LsmIndex.Error, reason: kind, message: message
    end
  end

  @doc "The ids of the shapes `change` (the filter's form) affects, as a list."
  def route(%__MODULE__{ref: ref, numbers: numbers}, change) do
    case Native.router_set_route(ref, numbers, change) do
      ids when is_list(ids) -> ids
      :dirty -> routed!(Native.router_set_route_dirty(ref, numbers, change), change)
      other -> failed!(other, change)
    end
  end

  defp routed!(ids, _change) when is_list(ids), do: ids
  defp routed!(other, change), do: failed!(other, change)

  @doc """
  `route/2` of each change of the list, in order (as few NIF calls as fit); with `keep`,
  `{ids, kept}` for each (`LsmIndex.ShapeRouter.route_many/3`'s `keep: true`).
  """
  def route_many(%__MODULE__{ref: ref, numbers: numbers}, changes, keep \\ false) do
    LsmIndex.Sliced.run(
      &Native.router_set_route_many(ref, numbers, &1, keep),
      &Native.router_set_route_many_dirty(ref, numbers, &1, keep),
      changes,
      fn
        {:bad_change, _position, change, why}, _done -> bad_change!(why, change)
        other, _done -> failed!(other, changes)
      end
    )
  end

  @doc "Every shape id (of `table` only, when given)."
  def shape_ids(%__MODULE__{ref: ref}), do: Native.router_set_shape_ids(ref, nil)

  @doc "How many shapes the set holds."
  def count(%__MODULE__{ref: ref}), do: Native.router_set_count(ref)

  @doc "Whether some shape of `table` is found through an index on `column`."
  def indexed?(%__MODULE__{ref: ref, numbers: numbers}, table, column) do
    case numbers do
      %{^table => n} -> Native.router_set_indexed(ref, n, column)
      _ -> false
    end
  end

  @doc "`table`'s shape index statistics (`LsmIndex.stats/1`), `nil` before any is indexed."
  def index_stats(%__MODULE__{ref: ref, numbers: numbers}, table) do
    with %{^table => n} <- numbers,
         {:ok, stats} <- Native.router_set_index_stats(ref, n) do
      Map.update!(stats, :segments_per_level, &Map.new/1)
    else
      {:error, {kind, message}} -> raise LsmIndex.Error, reason: kind, message: message
      _ -> nil
    end
  end

  @doc "Waits until every table's shape index is idle."
  def wait_idle(%__MODULE__{ref: ref}) do
    case Native.router_set_wait_idle(ref) do
      :ok -> :ok
      {:error, {kind, message}} -> raise LsmIndex.Error, reason: kind, message: message
    end
  end

  @doc "`%{indexed: n, scanned: n}` of `table`."
  def shape_counts(set, table) do
    case metrics(set, table) do
      nil -> %{indexed: 0, scanned: 0}
      m -> %{indexed: m.shapes_indexed, scanned: m.shapes_scanned}
    end
  end

  @doc "`table`'s router metrics (`LsmIndex.ShapeRouter.metrics/1`'s counters), or `nil`."
  def metrics(%__MODULE__{ref: ref, numbers: numbers}, table) do
    case numbers do
      %{^table => n} -> Native.router_set_metrics(ref, n)
      _ -> nil
    end
  end

  defp failed!({:bad_change, why}, change), do: bad_change!(why, change)

  defp failed!({:error, {kind, message}}, _what),
    do: raise(LsmIndex.Error, reason: kind, message: message)

  # the messages of the map tables' checks, word for word
  defp bad_change!(:not_a_change, change),
    do:
      raise(
        ArgumentError,
        "expected an :insert, :delete, :update or :truncate change, got: " <> inspect(change)
      )

  defp bad_change!({:not_a_map, record}, _change),
    do: raise(ArgumentError, "a record is a map of column => text, got: #{inspect(record)}")

  defp bad_change!({:bad_value, column, value}, _change),
    do:
      raise(
        ArgumentError,
        "record values are Postgres text or nil, got #{inspect(value)} for " <> inspect(column)
      )
end
