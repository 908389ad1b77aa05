defmodule Mix.Tasks.Compile.Cargo do
  @moduledoc false
  # Builds the NIF crate with cargo and copies it into priv/native (no hex `rustler` needed).
  use Mix.Task.Compiler

  @crate "lsm_index_nif"

  @impl true
  def run(_args) do
    {_, status} =
      System.cmd("cargo", ["build", "--release", "--quiet", "-p", @crate],
        into: IO.stream(:stdio, :line),
        stderr_to_stdout: true
      )

    if status != 0, do: Mix.raise("cargo build -p #{@crate} failed (exit #{status})")

    install("target/release/lib#{@crate}.so", "priv/native/#{@crate}.so")
    # Without this the _build priv link is missing on a clean clone.
    Mix.Project.build_structure()
    {:ok, []}
  end

  # A VM may have the library loaded (a test run, `mix compile` in another environment):
  # rewriting the file in place would change its mapped pages under it. Unchanged: left
  # alone; changed: written beside and renamed over, so a loaded copy keeps its inode.
  defp install(built, dest) do
    File.mkdir_p!(Path.dirname(dest))

    unless File.exists?(dest) and File.read!(dest) == File.read!(built) do
      tmp = dest <> ".tmp"
      File.cp!(built, tmp)
      File.rename!(tmp, dest)
    end
  end
end

defmodule LsmIndex.MixProject do
  use Mix.Project

  def project do
    [
      app: :lsm_index,
      version: "0.1.0",
      elixir: "~> 1.14",
      compilers: [:cargo | Mix.compilers()],
      elixirc_paths: elixirc_paths(Mix.env()),
      deps: []
    ]
  end

  # lib/ is the library, all a dependent project compiles (`MIX_ENV=prod`). Beside it, compiled
  # only where they run: demo/ (`mix demo`, the end-to-end PostgreSQL driver), bench/mix/
  # (`mix bench`), and test/support/ (the tests' helpers: the oracle's cluster, generators).
  defp elixirc_paths(:test), do: ["lib", "demo", "bench/mix", "test/support"]
  defp elixirc_paths(:dev), do: ["lib", "demo", "bench/mix"]
  defp elixirc_paths(_env), do: ["lib"]

  def application, do: [extra_applications: []]
end
