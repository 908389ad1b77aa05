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

    File.mkdir_p!("priv/native")
    File.cp!("target/release/lib#{@crate}.so", "priv/native/#{@crate}.so")
    # Without this the _build priv link is missing on a clean clone.
    Mix.Project.build_structure()
    {:ok, []}
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

  # test/support: helpers compiled for the tests only (the throwaway PostgreSQL cluster).
  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_env), do: ["lib"]

  def application, do: [extra_applications: []]
end
