defmodule LsmIndex.ConfigTest do
  # The application environment the library reads: `config :lsm_index, :equality_index |
  # :auto_threshold | :lsm_options` (LsmIndex.Filter's defaults) and `:data_dir`
  # (LsmIndex.Tenant's base). Not async: the environment is global; each test restores it.
  use ExUnit.Case, async: false

  alias LsmIndex.{Filter, Tenant}

  @table {"public", "todos"}
  @columns %{"id" => :int8, "user_id" => :int8}

  # Sets `key` for this test only.
  defp put_env(key, value) do
    previous = Application.fetch_env(:lsm_index, key)
    Application.put_env(:lsm_index, key, value)

    on_exit(fn ->
      case previous do
        {:ok, v} -> Application.put_env(:lsm_index, key, v)
        :error -> Application.delete_env(:lsm_index, key)
      end
    end)
  end

  defp shape(where), do: %{table: @table, columns: @columns, where: where}

  defp values(filter, ids) do
    Enum.reduce(ids, filter, &Filter.add_shape(&2, &1, shape({:eq, "user_id", &1})))
  end

  defp insert(user_id), do: {:insert, @table, %{"user_id" => to_string(user_id)}}

  describe "config :lsm_index, :equality_index" do
    test "is the default :index of Filter.new/1; an option still wins" do
      assert Filter.new().mode == :map
      put_env(:equality_index, :lsm)
      filter = values(Filter.new(), [1, 2])
      assert filter.mode == :lsm
      assert Filter.index_kind(filter, @table, "user_id") == :lsm
      assert Filter.affected_shapes(filter, insert(2)) == MapSet.new([2])
      assert Filter.new(index: :map).mode == :map

      put_env(:equality_index, :bogus)
      assert_raise ArgumentError, ~r/:index must be one of/, fn -> Filter.new() end
    end
  end

  describe "config :lsm_index, :auto_threshold" do
    test "is where index: :auto switches to LSM; an option still wins" do
      put_env(:auto_threshold, 3)
      filter = values(Filter.new(index: :auto), [1, 2, 3])
      assert Filter.index_kind(filter, @table, "user_id") == :map
      filter = values(filter, [4])
      assert Filter.index_kind(filter, @table, "user_id") == :lsm
      assert Filter.affected_shapes(filter, insert(1)) == MapSet.new([1])

      filter = values(Filter.new(index: :auto, auto_threshold: 10), 1..4)
      assert Filter.index_kind(filter, @table, "user_id") == :map

      put_env(:equality_index, :auto)
      assert Filter.new().auto_threshold == 3
    end
  end

  describe "config :lsm_index, :lsm_options" do
    test "are the LsmIndex.new/1 options of every LSM index a filter makes" do
      put_env(:lsm_options, lanes: 3, overlay_limit: 8)
      filter = values(Filter.new(index: :lsm), 1..100)
      assert Filter.index_stats(filter, @table).lanes == 3
      :ok = Filter.wait_idle(filter)
      assert Filter.index_stats(filter, @table).flushes > 0
      assert Filter.affected_shapes(filter, insert(77)) == MapSet.new([77])

      # an :auto filter moving a table to the router set uses them too; an option still wins
      filter = values(Filter.new(index: :auto, auto_threshold: 1), [1, 2])
      assert Filter.index_stats(filter, @table).lanes == 3
      filter = values(Filter.new(index: :lsm, lsm_options: [lanes: 5]), [1])
      assert Filter.index_stats(filter, @table).lanes == 5

      put_env(:lsm_options, lanes: 0)
      assert_raise ArgumentError, ~r/:lanes/, fn -> values(Filter.new(index: :lsm), [1]) end
    end
  end

  describe "config :lsm_index, :data_dir" do
    @tag :tmp_dir
    test "is Tenant's base when :base is not given", %{tmp_dir: dir} do
      assert_raise ArgumentError, ~r/:base/, fn -> Tenant.dir("acme", "todos.user_id") end

      put_env(:data_dir, dir)

      assert Tenant.dir("acme", "todos.user_id") ==
               {:ok, Path.join([dir, "acme", "todos.user_id"])}

      index = Tenant.open!("acme", "todos.user_id", lanes: 2)
      :ok = LsmIndex.add(index, 1, 7)
      :ok = LsmIndex.close(index)
      assert File.exists?(Path.join([dir, "acme", "todos.user_id", "LOCK"]))
      assert {:ok, index} = Tenant.open("acme", "todos.user_id")
      assert LsmIndex.lookup(index, 1) == [7]

      # :base wins over the setting
      other = Path.join(dir, "other")
      assert Tenant.dir("acme", "i", base: other) == {:ok, Path.join([other, "acme", "i"])}
    end
  end
end
