defmodule LsmIndex.ShapeRouter.OneTable do
  @moduledoc false
  # `LsmIndex.ShapeRouter` over one table (`new/4` with its columns), apart from the API as
  # `Tables` is for several: argument checks, the NIF calls of `router.rs` and
  # `router_shapes.rs`, their `:wait` / `:dirty` retries on the dirty twins, and their errors.

  alias LsmIndex.{Native, ShapeRouter}

  @max_id 4_294_967_295
  # A change in `LsmIndex.Filter`'s form names its table; a router has only one.
  @filter_form " (a router routes one table: its changes carry no table name)"
  # Longer clauses are parsed on a dirty scheduler.
  @dirty_bytes 16_384

  @doc "A router for `table` of `tenant` with `columns` (`ShapeRouter.new/4`)."
  def new(tenant, table, columns, opts) do
    # the first router or index made looks for :telemetry (route spans)
    LsmIndex.Telemetry.enabled?()
    opts = Keyword.validate!(opts, index: [], path: nil, sync: :flush, lc_ctype: :utf8)
    cols = LsmIndex.Where.native_columns!(columns)
    lc_ctype = LsmIndex.Where.lc_ctype!(opts[:lc_ctype])

    if cols == [], do: raise(ArgumentError, "a table has at least one column")

    index_opts = LsmIndex.options!(opts[:index])

    unless opts[:sync] in [:flush, :always, :none],
      do:
        raise(
          ArgumentError,
          ":sync must be :flush, :always or :none, got: #{inspect(opts[:sync])}"
        )

    opened =
      case opts[:path] do
        nil ->
          Native.router_new(cols, lc_ctype, index_opts)

        path when is_binary(path) ->
          Native.router_open(path, cols, lc_ctype, index_opts, opts[:sync])

        other ->
          raise ArgumentError, ":path must be a directory name, got: #{inspect(other)}"
      end

    case opened do
      {:ok, ref} ->
        names = for {name, _type} <- cols, do: name
        persistent = opts[:path] != nil

        {:ok,
         %ShapeRouter{
           ref: ref,
           tenant: tenant,
           table: table,
           persistent: persistent,
           columns: names
         }}

      {:error, _} = error ->
        error
    end
  end

  @doc "Makes every shape change so far durable."
  def flush(%ShapeRouter{ref: ref}), do: open!(Native.router_flush(ref))

  @doc "Adds (or replaces) shape `shape_id` (`ShapeRouter.add_shape/4`)."
  def add_shape(%ShapeRouter{ref: ref, persistent: persistent}, shape_id, where_sql, opts) do
    id!(shape_id)

    unless is_binary(where_sql),
      do: raise(ArgumentError, "a WHERE clause is a string, got: #{inspect(where_sql)}")

    params = LsmIndex.Where.params!(Keyword.get(Keyword.validate!(opts, params: []), :params))

    reply =
      cond do
        not String.valid?(where_sql) ->
          {:error, {:invalid_where, 0, "the clause is not UTF-8 text"}}

        persistent or byte_size(where_sql) > @dirty_bytes ->
          Native.router_add_shape_dirty(ref, shape_id, where_sql, params)

        true ->
          case Native.router_add_shape(ref, shape_id, where_sql, params) do
            :wait -> Native.router_add_shape_dirty(ref, shape_id, where_sql, params)
            reply -> reply
          end
      end

    open!(reply)
  end

  @doc "Adds the list `shapes` in one call (`ShapeRouter.add_shapes/2`)."
  def add_shapes(%ShapeRouter{}, shapes) when not is_list(shapes),
    do:
      raise(
        ArgumentError,
        "shapes are a list of {id, where_sql[, params]}, got: #{inspect(shapes)}"
      )

  def add_shapes(%ShapeRouter{ref: ref}, shapes) do
    # the NIF reads the list as it is; a malformed entry is badarg before anything is
    # added, and then the list is checked here to say which (and to add the valid prefix)
    try do
      Native.router_add_shapes(ref, shapes)
    rescue
      ArgumentError -> add_checked(ref, shapes)
    else
      reply -> batch_reply(reply, shapes, nil)
    end
  end

  defp add_checked(ref, shapes) do
    {valid, refused} = batch_entries(shapes, [])
    batch_reply(Native.router_add_shapes(ref, valid), valid, refused)
  end

  defp batch_reply(:ok, _shapes, nil), do: :ok
  defp batch_reply(:ok, _shapes, {id, reason}), do: {:error, {id, reason}}

  defp batch_reply({:refused, at, error}, shapes, _refused) do
    {:error, reason} = open!(error)
    {:error, {shapes |> Enum.at(at) |> elem(0), reason}}
  end

  # the entries as the NIF takes them, up to the first whose clause is not UTF-8 (then that
  # one's refusal, as add_shape/4 answers it)
  defp batch_entries([], acc), do: {Enum.reverse(acc), nil}

  defp batch_entries([entry | rest], acc) do
    {id, sql, params} =
      case entry do
        {id, sql} ->
          {id, sql, []}

        {id, sql, params} ->
          {id, sql, params}

        other ->
          raise ArgumentError, "a shape is {id, where_sql[, params]}, got: #{inspect(other)}"
      end

    id!(id)

    unless is_binary(sql),
      do: raise(ArgumentError, "a WHERE clause is a string, got: #{inspect(sql)}")

    params = LsmIndex.Where.params!(params)

    if String.valid?(sql),
      do: batch_entries(rest, [{id, sql, params} | acc]),
      else: {Enum.reverse(acc), {id, {:invalid_where, 0, "the clause is not UTF-8 text"}}}
  end

  @doc "Removes shape `shape_id` (`ShapeRouter.remove_shape/2`)."
  def remove_shape(%ShapeRouter{ref: ref, persistent: persistent}, shape_id) do
    id!(shape_id)

    reply =
      case persistent or Native.router_remove_shape(ref, shape_id) do
        ok when ok in [true, :wait] -> Native.router_remove_shape_dirty(ref, shape_id)
        reply -> reply
      end

    with {:error, _} = error <- reply, do: failed!(error, shape_id)
  end

  @doc "Appends column `name` of type `type` to the table (`ShapeRouter.add_column/3`)."
  # A column the table cannot take (a name PostgreSQL cannot have, one column too many, an
  # enum name another column has with other labels) is the caller's mistake, as in `new/4`;
  # a column of that name and another type is the table's answer.
  def add_column(%ShapeRouter{ref: ref}, name, type) do
    unless is_binary(name) and name != "" and String.valid?(name) and
             not String.contains?(name, "\0"),
           do:
             raise(
               ArgumentError,
               "a column name is a non-empty UTF-8 string without NUL, got: #{inspect(name)}"
             )

    type = LsmIndex.Filter.ColumnType.column_type!(name, type)

    case Native.router_add_column(ref, name, LsmIndex.Filter.ColumnType.native(type)) do
      {:error, {:invalid_config, message}} -> raise ArgumentError, message
      reply -> open!(reply)
    end
  end

  @doc "The table's columns now (`ShapeRouter.columns/1`)."
  def columns(%ShapeRouter{ref: ref}), do: Native.router_columns(ref)

  @doc "The names of the table's columns now: what `pack_changes/2` packs."
  # The struct keeps the names the router was made with: while the table has as many
  # columns (no column added since), they are its columns, and no list is made.
  def column_names(%ShapeRouter{ref: ref, columns: names}) do
    if Native.router_width(ref) == length(names),
      do: names,
      else: for({name, _type} <- Native.router_columns(ref), do: name)
  end

  @doc "The sorted ids of the shapes `change` affects (`ShapeRouter.route/2`)."
  def route(%ShapeRouter{ref: ref}, change) do
    case Native.router_route(ref, change) do
      ids when is_list(ids) -> ids
      # more than 1,000 scanned shapes: routes run on a dirty scheduler
      :dirty -> routed!(Native.router_route_dirty(ref, change), change)
      other -> failed!(other, change)
    end
  end

  defp routed!(ids, _change) when is_list(ids), do: ids
  defp routed!(other, change), do: failed!(other, change)

  @doc """
  `route/2` of each change of the list `changes`, in order (`ShapeRouter.route_many/3`);
  with `keep`, `{ids, kept}` for each.
  """
  # Each NIF call routes changes for ~0.5 ms and hands back the rest (reversed results);
  # with more than 1,000 scanned shapes the whole list goes to a dirty scheduler.
  def route_many(%ShapeRouter{ref: ref}, changes, keep \\ false) do
    LsmIndex.Sliced.run(
      &Native.router_route_many(ref, &1, keep),
      &Native.router_route_many_dirty(ref, &1, keep),
      changes,
      fn
        {:bad_change, position, change, why}, done ->
          raise ArgumentError, bad_change(done + position, change, why)

        other, _done ->
          failed!(other, changes)
      end
    )
  end

  # Which element of `route_many/2`'s list is malformed and why (`why` says what a change or
  # a record looks like).
  defp bad_change(index, change, why) do
    hint =
      case change do
        {op, _table, rec} when op in [:insert, :delete] and is_map(rec) -> @filter_form
        {:update, _table, old, new} when is_map(old) and is_map(new) -> @filter_form
        {:truncate, _table} -> @filter_form
        _ -> ""
      end

    "the change at index #{index} is malformed: #{why}#{hint}, got: #{inspect(change, limit: 10)}"
  end

  # A closed router is a caller's mistake, as for `LsmIndex`.
  defp open!({:error, {:closed, _}}), do: raise(ArgumentError, "the router was closed")
  defp open!(reply), do: reply

  defp id!(id) when is_integer(id) and id >= 0 and id <= @max_id, do: id

  defp id!(id),
    do: raise(ArgumentError, "a shape id is an integer in 0..#{@max_id}, got: #{inspect(id)}")

  defp failed!({:bad_change, why}, what),
    do: raise(ArgumentError, "#{why}, got: #{inspect(what, limit: 10)}")

  defp failed!({:error, {:closed, _}} = closed, _what), do: open!(closed)

  defp failed!({:error, {kind, message}}, _what),
    do: raise(LsmIndex.Error, reason: kind, message: message)
end
