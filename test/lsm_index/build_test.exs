defmodule LsmIndex.BuildTest do
  # What a project that depends on lsm_index compiles: lib/ alone (issue 20). The demo
  # (demo/) and the bench task (bench/mix/) are compiled in the dev and test environments only.
  use ExUnit.Case, async: true

  @tag :tmp_dir
  @tag timeout: 600_000
  test "MIX_ENV=prod mix compile builds the library and no demo or bench module", %{tmp_dir: dir} do
    {out, status} =
      System.cmd("mix", ["compile"],
        env: [{"MIX_ENV", "prod"}, {"MIX_BUILD_PATH", dir}],
        stderr_to_stdout: true
      )

    assert status == 0, out

    modules =
      dir
      |> Path.join("lib/lsm_index/ebin/*.beam")
      |> Path.wildcard()
      |> Enum.map(&Path.basename(&1, ".beam"))

    assert "Elixir.LsmIndex" in modules
    assert "Elixir.LsmIndex.ShapeRouter" in modules
    assert "Elixir.LsmIndex.Filter" in modules
    assert Enum.filter(modules, &String.starts_with?(&1, "Elixir.LsmIndex.Demo")) == []
    assert Enum.filter(modules, &String.starts_with?(&1, "Elixir.Mix.Tasks")) == []
  end
end
