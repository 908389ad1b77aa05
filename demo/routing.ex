defmodule LsmIndex.Demo.Routing do
  @moduledoc """
  Routes the demo's transactions to its shapes, `via` one `LsmIndex.ShapeRouter` per table
  (`:router`; persistent in `path/<table>` when a path is given) or one `LsmIndex.Filter`
  (`:filter_lsm`, `:filter_map`). Not public API.

  `route/2` turns a transaction's changes into what each affected shape's client must do:
  `{shape, :add, row_id}`, `{shape, :del, row_id}` or `{shape, :clear}` (a truncate). An
  insert adds the row to the shapes it is routed to (those whose WHERE holds on it), a
  delete removes it from them. An update is routed to the shapes whose WHERE holds on the
  old or the new row; of those, the client keeps the row iff the WHERE holds on the new
  row, which the same call answers (`keep: true`: each change's `{ids, kept}`). The router
  routes a table's changes of one transaction in one `ShapeRouter.route_many/3` call; the
  filter routes all of a transaction's changes in one `Filter.affected_shapes_many/3` call,
  and registers the shapes with one `Filter.add_shapes/2`.

  (Routing is conservative: a value that does not parse, or an expression that raises an
  error, routes the change to the shape. The demo's rows have neither — the summary reports
  the router's `unparseable_rows` and `evaluation_errors`, which must stay 0 for "routed as
  an insert" to mean "the WHERE holds".)
  """

  alias LsmIndex.{Filter, ShapeRouter}
  alias LsmIndex.Demo.Schema

  defstruct [:via, routers: %{}, filter: nil, columns: %{}]

  @typedoc "The routing side of the demo."
  @type t :: %__MODULE__{}
  @typedoc "What a shape's client does."
  @type op ::
          {non_neg_integer(), :add | :del, integer()} | {non_neg_integer(), :clear}

  @doc """
  Routing `via` (`:router`, `:filter_lsm`, `:filter_map`) for `shapes`. With `path`
  (routers only) each router is persistent in `path/<table>`; when it is opened again its
  shapes are already there and are not added (`reopened: true` in the result).
  """
  @spec new(atom(), [LsmIndex.Demo.Shapes.t()], Path.t() | nil, %{String.t() => list()}) ::
          {t(), boolean()}
  def new(via, shapes, path, columns \\ Map.new(Schema.names(), &{&1, Schema.columns(&1)}))

  def new(:router, shapes, path, all_columns) do
    by_table = Enum.group_by(shapes, & &1.table)

    opened =
      Map.new(Schema.names(), fn table ->
        columns = Map.fetch!(all_columns, table)

        router =
          case path do
            nil -> ShapeRouter.new!("demo", {"public", table}, columns)
            path -> ShapeRouter.open!(Path.join(path, table), "demo", {"public", table}, columns)
          end

        {table, router}
      end)

    reopened = path != nil and File.exists?(Path.join(path, "shapes.done"))

    unless reopened do
      for {table, router} <- opened, shape <- Map.get(by_table, table, []) do
        ShapeRouter.add_shape!(router, shape.id, shape.where, params: shape.params)
      end

      for {_table, router} <- opened, do: ShapeRouter.flush!(router)
      if path, do: File.write!(Path.join(path, "shapes.done"), "")
    end

    {%__MODULE__{via: :router, routers: opened, columns: all_columns}, reopened}
  end

  def new(via, shapes, nil, all_columns) when via in [:filter_lsm, :filter_map] do
    index = if via == :filter_lsm, do: :lsm, else: :map
    routing = %__MODULE__{via: via, columns: all_columns}
    shapes = Enum.map(shapes, &filter_shape(routing, &1))
    {%{routing | filter: Filter.add_shapes(Filter.new(index: index), shapes)}, false}
  end

  @doc """
  The ops of one transaction's `changes` (`LsmIndex.Filter` tuples, tables `{"public",
  name}`), in order, with the time spent in the routing calls (native time units).
  """
  @spec route(t(), [tuple()]) :: {[op()], integer()}
  def route(%__MODULE__{via: :router, routers: routers}, changes) do
    changes
    |> Enum.group_by(&table/1)
    |> Enum.reduce({[], 0}, fn {table, changes}, {ops, route_t} ->
      router = Map.fetch!(routers, table)
      tuples = Enum.map(changes, &router_change/1)
      t0 = System.monotonic_time()
      routed = ShapeRouter.route_many(router, tuples, keep: true)
      t1 = System.monotonic_time()
      {ops(changes, routed, ops), route_t + t1 - t0}
    end)
    |> then(fn {ops, route_t} -> {Enum.reverse(ops), route_t} end)
  end

  def route(%__MODULE__{filter: filter}, changes) do
    t0 = System.monotonic_time()
    routed = Filter.affected_shapes_many(filter, changes, keep: true)
    t1 = System.monotonic_time()
    routed = for {ids, kept} <- routed, do: {MapSet.to_list(ids), kept}
    {Enum.reverse(ops(changes, routed, [])), t1 - t0}
  end

  @doc "Adds `shapes` (while the stream runs: each replaces a shape of the same id, if any)."
  @spec add_shapes(t(), [LsmIndex.Demo.Shapes.t()]) :: t()
  def add_shapes(%__MODULE__{via: :router, routers: routers} = routing, shapes) do
    for shape <- shapes do
      router = Map.fetch!(routers, shape.table)
      ShapeRouter.add_shape!(router, shape.id, shape.where, params: shape.params)
    end

    routing
  end

  def add_shapes(%__MODULE__{filter: filter} = routing, shapes) do
    %{routing | filter: Filter.add_shapes(filter, Enum.map(shapes, &filter_shape(routing, &1)))}
  end

  @doc "Removes shape `id` of `table` (an id it does not have is fine)."
  @spec remove_shape(t(), String.t(), non_neg_integer()) :: t()
  def remove_shape(%__MODULE__{via: :router, routers: routers} = routing, table, id) do
    :ok = ShapeRouter.remove_shape(Map.fetch!(routers, table), id)
    routing
  end

  def remove_shape(%__MODULE__{filter: filter} = routing, _table, id),
    do: %{routing | filter: Filter.remove_shape(filter, id)}

  @doc """
  Learns the columns a Relation message gives `table` (`[{name, type_oid}]`, the table as it
  is now): a column the routing does not know (added while streaming: at the end) is added
  to the table's router (`ShapeRouter.add_column/3`) and to the columns the filter's shapes
  are written against, with its type from `Schema.added_columns/0`.
  """
  @spec learn(t(), {String.t(), String.t()}, [{String.t(), non_neg_integer()}]) :: t()
  def learn(%__MODULE__{columns: all} = routing, {"public", table}, relation) do
    known = Map.fetch!(all, table)
    names = MapSet.new(known, &elem(&1, 0))
    new = for {name, _oid} <- relation, not MapSet.member?(names, name), do: name

    if new == [] do
      routing
    else
      types = Map.new(Map.get(Schema.added_columns(), table, []))

      added =
        for name <- new do
          type = Map.get(types, name) || raise("#{table}.#{name}: a column the demo cannot type")
          {name, type}
        end

      if routing.via == :router do
        router = Map.fetch!(routing.routers, table)
        for {name, type} <- added, do: :ok = ShapeRouter.add_column!(router, name, type)
      end

      %{routing | columns: Map.put(all, table, known ++ added)}
    end
  end

  @doc "`table`'s columns (`[{name, type}]`) as the routing knows them now."
  @spec columns(t(), String.t()) :: LsmIndex.Where.columns()
  def columns(%__MODULE__{columns: all}, table), do: Map.fetch!(all, table)

  @doc "The names of `table`'s columns the routing knows now."
  @spec known_columns(t(), String.t()) :: [String.t()]
  def known_columns(%__MODULE__{columns: all}, table),
    do: all |> Map.fetch!(table) |> Enum.map(&elem(&1, 0))

  @doc "The routers' metrics (`:router`), by table; `%{}` for the filter."
  @spec metrics(t()) :: %{String.t() => map()}
  def metrics(%__MODULE__{routers: routers}),
    do: Map.new(routers, fn {table, router} -> {table, ShapeRouter.metrics(router)} end)

  @doc "Closes the routers (a persistent one flushes)."
  @spec close(t()) :: :ok
  def close(%__MODULE__{routers: routers}) do
    Enum.each(routers, fn {_table, router} -> ShapeRouter.close!(router) end)
  end

  defp filter_shape(routing, shape) do
    {shape.id,
     %{
       table: {"public", shape.table},
       columns: Map.fetch!(routing.columns, shape.table),
       where: shape.where,
       params: shape.params
     }}
  end

  defp table({_op, {"public", table}, _}), do: table
  defp table({:update, {"public", table}, _, _}), do: table
  defp table({:truncate, {"public", table}}), do: table

  defp router_change({:insert, _table, new}), do: {:insert, new}
  defp router_change({:update, _table, old, new}), do: {:update, old, new}
  defp router_change({:delete, _table, old}), do: {:delete, old}
  defp router_change({:truncate, _table}), do: :truncate

  # changes with their routed `{shapes, kept}`: kept, the shapes the row is in afterwards (a
  # router's list or the filter's MapSet)
  defp ops([], [], acc), do: acc

  defp ops([{:insert, _, new} | changes], [{shapes, _kept} | routed], acc) do
    id = id(new)
    ops(changes, routed, Enum.reduce(shapes, acc, &[{&1, :add, id} | &2]))
  end

  defp ops([{:delete, _, old} | changes], [{shapes, _kept} | routed], acc) do
    id = id(old)
    ops(changes, routed, Enum.reduce(shapes, acc, &[{&1, :del, id} | &2]))
  end

  defp ops([{:update, _, old, new} | changes], [{shapes, kept} | routed], acc) do
    {old_id, new_id} = {id(old), id(new)}
    kept = if is_struct(kept, MapSet), do: kept, else: MapSet.new(kept)

    acc =
      Enum.reduce(shapes, acc, fn shape, acc ->
        cond do
          not MapSet.member?(kept, shape) -> [{shape, :del, old_id} | acc]
          old_id == new_id -> [{shape, :add, new_id} | acc]
          true -> [{shape, :add, new_id}, {shape, :del, old_id} | acc]
        end
      end)

    ops(changes, routed, acc)
  end

  defp ops([{:truncate, _} | changes], [{shapes, _kept} | routed], acc),
    do: ops(changes, routed, Enum.reduce(shapes, acc, &[{&1, :clear} | &2]))

  defp id(record), do: String.to_integer(Map.fetch!(record, "id"))
end
