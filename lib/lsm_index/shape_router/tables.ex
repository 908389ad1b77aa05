defmodule LsmIndex.ShapeRouter.Tables do
  @moduledoc false
  # `LsmIndex.ShapeRouter` over a tenant's tables (`new/3` with a map of tables): argument
  # checks, the NIF calls of `router_set_views.rs`, their `:wait` / `:dirty` retries on the
  # dirty twins, and errors as the single-table form reports them.

  alias LsmIndex.{Native, ShapeRouter}

  @doc "A router over `tables` (`%{{schema, table} => columns}`)."
  def new(tenant, tables, opts) do
    # the first router or index made looks for :telemetry (route spans)
    LsmIndex.Telemetry.enabled?()
    opts = Keyword.validate!(opts, index: [], lc_ctype: :utf8, path: nil)
    lc_ctype = LsmIndex.Where.lc_ctype!(opts[:lc_ctype])
    index_opts = LsmIndex.options!(opts[:index])

    if map_size(tables) == 0, do: raise(ArgumentError, "a router needs at least one table")

    defs =
      tables
      |> Enum.sort()
      |> Enum.map(fn {table, columns} ->
        {schema, name} = table_name!(table)
        cols = LsmIndex.Where.native_columns!(columns)

        if cols == [],
          do: raise(ArgumentError, "table #{inspect(table)} has no columns")

        {schema, name, cols}
      end)

    numbers = tables |> Map.keys() |> Enum.sort() |> Enum.with_index() |> Map.new()

    case opts[:path] do
      nil ->
        case Native.router_set_new_tables(defs, lc_ctype, index_opts) do
          {:ok, ref} -> {:ok, %ShapeRouter{ref: ref, tenant: tenant, table: nil, tables: numbers}}
          {:error, _} = error -> error
        end

      path when is_binary(path) and path != "" ->
        case Native.router_set_open_tables(path, defs, lc_ctype, index_opts) do
          {:ok, ref, _position} ->
            {:ok,
             %ShapeRouter{ref: ref, tenant: tenant, table: nil, tables: numbers, persistent: true}}

          {:error, {:invalid_config, message}} ->
            {:error, {:table_mismatch, message}}

          {:error, _} = error ->
            error
        end

      other ->
        raise ArgumentError, ":path must be a directory name, got: #{inspect(other)}"
    end
  end

  @doc "Makes every change so far durable with the caller's stream position."
  def flush(%ShapeRouter{ref: ref}, position) do
    unless is_binary(position),
      do: raise(ArgumentError, ":position is a binary, got: #{inspect(position)}")

    ref |> Native.router_set_flush_tables(position) |> closed!()
  end

  @doc "The position of the last flush (`nil`: never flushed, or in memory)."
  def position(%ShapeRouter{persistent: false}), do: nil

  def position(%ShapeRouter{ref: ref}), do: Native.router_set_position(ref)

  @doc "Releases the directory of a persistent router; changes since its last flush are lost."
  def close(%ShapeRouter{persistent: false}), do: :ok
  def close(%ShapeRouter{ref: ref}), do: ref |> Native.router_set_close_tables() |> closed!()

  defp table_name!({schema, name} = table) when is_binary(schema) and is_binary(name) do
    unless String.valid?(schema) and String.valid?(name),
      do: raise(ArgumentError, "a table is named by UTF-8 text, got: #{inspect(table)}")

    table
  end

  defp table_name!(other),
    do: raise(ArgumentError, "a table is {schema, name}, got: #{inspect(other)}")

  @doc "Adds (or replaces) a shape of one of the router's tables."
  def add_shape(%ShapeRouter{ref: ref, tables: numbers}, id, sql, opts) do
    opts = Keyword.validate!(opts, [:table, params: [], subquery_values: []])

    unless is_binary(sql),
      do: raise(ArgumentError, "a WHERE clause is a string, got: #{inspect(sql)}")

    number = number!(numbers, opts[:table])
    params = LsmIndex.Where.params!(opts[:params])
    seeds = seeds!(opts[:subquery_values])

    if String.valid?(sql) do
      case Native.router_set_add_seeded(ref, number, id, sql, params, seeds) do
        :wait -> Native.router_set_add_seeded_dirty(ref, number, id, sql, params, seeds)
        reply -> reply
      end
      |> closed!()
    else
      {:error, {:invalid_where, 0, "the clause is not UTF-8 text"}}
    end
  end

  defp number!(numbers, nil),
    do:
      raise(
        ArgumentError,
        "add_shape of a router over several tables needs table: {schema, name} (one of " <>
          "#{inspect(Map.keys(numbers))})"
      )

  defp number!(numbers, table) do
    case numbers do
      %{^table => n} ->
        n

      _ ->
        raise ArgumentError,
              "unknown table #{inspect(table)}: the router's tables are #{inspect(Map.keys(numbers))}"
    end
  end

  # Each subquery's rows: text or nil (a list of them per row for a composite subquery), or
  # :current.
  defp seeds!(values) when is_list(values) do
    Enum.map(values, fn
      :current ->
        :current

      rows when is_list(rows) ->
        Enum.each(rows, &row!/1)
        rows

      other ->
        raise ArgumentError,
              "each subquery's values are a list of rows (or :current), got: #{inspect(other, limit: 10)}"
    end)
  end

  defp seeds!(other),
    do:
      raise(
        ArgumentError,
        ":subquery_values is a list (one list of rows per subquery), got: #{inspect(other, limit: 10)}"
      )

  defp row!(v) when is_binary(v) or is_nil(v), do: :ok

  defp row!(row) when is_list(row) do
    unless Enum.all?(row, &(is_binary(&1) or is_nil(&1))),
      do: raise(ArgumentError, "a subquery row's values are text or nil, got: #{inspect(row)}")
  end

  defp row!(other),
    do:
      raise(
        ArgumentError,
        "a subquery row is text, nil or a list of them, got: #{inspect(other, limit: 10)}"
      )

  @doc "What to query for each subquery's snapshot of a shape."
  def seed_queries(%ShapeRouter{ref: ref, tables: numbers}, sql, opts) do
    opts = Keyword.validate!(opts, [:table, params: []])

    unless is_binary(sql) and String.valid?(sql),
      do: raise(ArgumentError, "a WHERE clause is UTF-8 text, got: #{inspect(sql)}")

    number = number!(numbers, opts[:table])
    params = LsmIndex.Where.params!(opts[:params])
    ref |> Native.router_set_seed_queries(number, sql, params) |> closed!()
  end

  @doc "Removes a shape (an unknown id is fine)."
  def remove_shape(%ShapeRouter{ref: ref}, id) do
    reply =
      case Native.router_set_remove(ref, id) do
        :wait -> Native.router_set_remove_dirty(ref, id)
        reply -> reply
      end

    case closed!(reply) do
      removed when is_boolean(removed) -> :ok
      {:error, {kind, message}} -> raise LsmIndex.Error, reason: kind, message: message
    end
  end

  @doc "`{ids, moves}` of one change."
  def route_with_moves(%ShapeRouter{ref: ref, tables: numbers} = router, change) do
    reply =
      case Native.router_set_route_moves(ref, numbers, change) do
        :wait -> Native.router_set_route_moves_dirty(ref, numbers, change)
        reply -> reply
      end

    case reply do
      {ids, moves} when is_list(ids) -> {ids, moves}
      {:bad_change, why} -> raise ArgumentError, bad_change(why, change)
      other -> failed!(router, other)
    end
  end

  @doc "`{ids, moves}` of each change, in order."
  def route_many(%ShapeRouter{ref: ref, tables: numbers} = router, changes) do
    LsmIndex.Sliced.run(
      &Native.router_set_route_many_moves(ref, numbers, &1),
      &Native.router_set_route_many_moves_dirty(ref, numbers, &1),
      changes,
      fn
        {:bad_change, position, change, why}, done ->
          raise ArgumentError,
                "the change at index #{done + position}: " <> bad_change(why, change)

        other, _done ->
          failed!(router, other)
      end
    )
  end

  @doc "`ShapeRouter.metrics/1` of a router over several tables: refused (it reports per table)."
  def metrics(%ShapeRouter{tables: tables}),
    do:
      raise(
        ArgumentError,
        "a router over several tables reports per table: metrics(router, table), table one of " <>
          inspect(Map.keys(tables))
      )

  @doc "`metrics/1` of one table (`ShapeRouter.metrics/2`)."
  def metrics(%ShapeRouter{tables: tables, ref: ref, tenant: tenant}, table) do
    case tables do
      %{^table => n} ->
        ref |> Native.router_set_metrics(n) |> Map.merge(%{tenant: tenant, table: table})

      _ ->
        raise ArgumentError,
              "unknown table #{inspect(table)}: the router's tables are " <>
                inspect(Map.keys(tables))
    end
  end

  @doc "The subquery views' figures (`ShapeRouter.view_metrics/1`)."
  def view_metrics(%ShapeRouter{ref: ref} = router) do
    case Native.router_set_view_metrics(ref) do
      {:ok, %{view_index: {:ok, stats}} = m} -> %{m | view_index: stats}
      {:ok, m} -> m
      other -> failed!(router, other)
    end
  end

  defp bad_change(:not_a_change, change),
    do:
      "expected {:insert | :delete, table, record}, {:update, table, old, new} or " <>
        "{:truncate, table}, got: #{inspect(change, limit: 10)}"

  defp bad_change({:unknown_table, table}, change),
    do: "#{inspect(table)} is not a table of the router, in #{inspect(change, limit: 10)}"

  defp bad_change({:not_a_map, record}, _change),
    do: "a record is a map of column => text, got: #{inspect(record, limit: 10)}"

  defp bad_change({:bad_value, column, value}, _change),
    do: "record values are Postgres text or nil, got #{inspect(value)} for #{inspect(column)}"

  defp closed!({:error, {:closed, _}}), do: raise(ArgumentError, "the router was closed")
  defp closed!(reply), do: reply

  defp failed!(router, {:error, {:unparseable, number, column}}) do
    table = Enum.find_value(router.tables, fn {t, n} -> n == number and t end)

    raise LsmIndex.Error,
      reason: :unparseable,
      message:
        "a value of #{inspect(table)}.#{column} does not parse for the column's declared type; " <>
          "a subquery reads it, so the change was not applied"
  end

  defp failed!(_router, {:error, {:closed, _}} = closed), do: closed!(closed)

  defp failed!(_router, {:error, {kind, message}}),
    do: raise(LsmIndex.Error, reason: kind, message: message)
end
