defmodule LsmIndex.TenantTest do
  use ExUnit.Case, async: true

  alias LsmIndex.Tenant

  @moduletag :tmp_dir

  describe "open/3" do
    test "a tenant's index lives under the base", %{tmp_dir: base} do
      assert {:ok, path} = Tenant.dir("acme-1", "todos.user_id", base: base)
      assert path == Path.join([base, "acme-1", "todos.user_id"])
      {:ok, index} = Tenant.open("acme-1", "todos.user_id", base: base, lanes: 2)
      :ok = LsmIndex.add(index, 1, 1)
      :ok = LsmIndex.close(index)
      assert File.exists?(Path.join(path, "LOCK"))
      assert Tenant.open("acme-1", "todos.user_id", base: base) |> elem(0) == :ok
    end
  end

  describe "open!/3" do
    test "returns the index; a bad name raises LsmIndex.Error", %{tmp_dir: base} do
      index = Tenant.open!("acme-1", "todos.user_id", base: base, lanes: 2)
      :ok = LsmIndex.add(index, 1, 1)
      assert LsmIndex.lookup(index, 1) == [1]

      error =
        assert_raise LsmIndex.Error, ~r/plain directory name/, fn ->
          Tenant.open!("..", "i", base: base)
        end

      assert error.reason == :invalid_name
      assert_raise ArgumentError, ~r/:base/, fn -> Tenant.open!("t", "i", []) end
    end
  end

  describe "dir/3" do
    test "names that could leave the base are rejected", %{tmp_dir: base} do
      for bad <- [
            "..",
            ".",
            "../x",
            "a/b",
            "/etc",
            "a\\b",
            "nul\0byte",
            ".hidden",
            "",
            "sp ace",
            "é",
            String.duplicate("a", 256),
            :atom,
            nil
          ] do
        assert {:error, {:invalid_name, _}} = Tenant.dir(bad, "i", base: base), inspect(bad)
        assert {:error, {:invalid_name, _}} = Tenant.dir("t", bad, base: base), inspect(bad)
        assert {:error, {:invalid_name, _}} = Tenant.open(bad, "i", base: base)
      end

      assert File.ls!(base) == []
    end

    test "a base is required" do
      assert_raise ArgumentError, ~r/:base/, fn -> Tenant.dir("t", "i", []) end
    end
  end
end
