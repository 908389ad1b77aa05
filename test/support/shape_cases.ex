defmodule LsmIndex.Test.ShapeCases do
  @moduledoc """
  Tables of WHERE cases run through `LsmIndex.ShapeRouter` and `LsmIndex.Filter` alike (the
  language tests): each case is `{sql, params, records it matches, records it does not}`,
  shape `i` being case `i`; `refused` lists are `{sql, words of the error}`.
  """
  import ExUnit.Assertions
  alias LsmIndex.{Filter, ShapeRouter}

  @doc "A router over `table` holding every case's shape (`opts` as `ShapeRouter.new/4`)."
  def router(table, cols, cases, opts \\ []) do
    {:ok, r} = ShapeRouter.new("t", table, cols, opts)

    for {{sql, params, _, _}, i} <- Enum.with_index(cases),
        do: :ok = ShapeRouter.add_shape(r, i, sql, params: params)

    r
  end

  @doc "A filter of index `mode` holding every case's shape."
  def filter(mode, table, cols, cases) do
    cases
    |> Enum.with_index()
    |> Enum.reduce(Filter.new(index: mode), fn {{sql, params, _, _}, i}, f ->
      Filter.add_shape(f, i, %{table: table, columns: cols, where: sql, params: params})
    end)
  end

  @doc "Every case's shape is affected by the records it matches and not by the others."
  def check(cases, affected) do
    for {{sql, _, yes, no}, i} <- Enum.with_index(cases) do
      for rec <- yes, do: assert(i in affected.(rec), "#{sql} on #{inspect(rec)}")
      for rec <- no, do: refute(i in affected.(rec), "#{sql} on #{inspect(rec)}")
    end
  end

  @doc "Each refused clause is refused by the router with its words."
  def assert_router_refuses(r, refused) do
    for {sql, why} <- refused do
      assert {:error, {:invalid_where, _, message}} = ShapeRouter.add_shape(r, 99, sql)
      assert message =~ why, "#{sql}: #{message}"
    end
  end

  @doc "Each refused clause raises `ArgumentError` with its words when added to `f`."
  def assert_filter_refuses(f, table, cols, refused) do
    for {sql, why} <- refused do
      shape = %{table: table, columns: cols, where: sql}

      assert_raise ArgumentError, ~r/#{Regex.escape(why)}/, fn ->
        Filter.add_shape(f, 99, shape)
      end
    end
  end
end
