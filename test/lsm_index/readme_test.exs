defmodule LsmIndex.ReadmeTest do
  # The README's Elixir examples run as written (their `=` matches are the assertions).
  # Not async: examples that write files do so under System.tmp_dir!(), pointed at the
  # test's own directory here.
  use ExUnit.Case, async: false

  readme = Path.expand("../../README.md", __DIR__)
  @external_resource readme
  @blocks Regex.scan(~r/```elixir\n(.*?)```/s, File.read!(readme), capture: :all_but_first)
          |> List.flatten()

  @readme File.read!(readme)

  describe "scenario: README.md options table" do
    # `| `:name` | default | meaning |` rows of the Elixir options table
    defp readme_options do
      [_, section] = String.split(@readme, "### Options (`LsmIndex.new/1`, `LsmIndex.open/2`)")

      [table | _] =
        section |> String.split("| option |", parts: 2) |> List.last() |> String.split("\n\n")

      for [_, name, default] <- Regex.scan(~r/^\| `:(\w+)` \| (.*?) \| /m, table),
          do: {String.to_atom(name), default}
    end

    # the LsmIndex moduledoc's `(default ...)` of each option
    defp moduledoc_defaults do
      {:docs_v1, _, :elixir, _, %{"en" => doc}, _, _} = Code.fetch_docs(LsmIndex)
      [_, options | _] = String.split(doc, ["## Options", "## Scheduling"])

      for item <- String.split(options, "\n  * `:", trim: true),
          [name, text] <- [String.split(item, "` - ", parts: 2)],
          [_, default] <- [Regex.run(~r/\(default\s+(.*)\)\s*$/s, text)],
          into: %{},
          do: {String.to_atom(name), String.replace(default, ~r/\s+/, " ")}
    end

    test "lists exactly the options LsmIndex takes, with the moduledoc's defaults" do
      rows = readme_options()
      names = Enum.map(rows, &elem(&1, 0))
      assert Enum.sort(names) == Enum.sort(Map.keys(LsmIndex.Native.index_defaults()))
      assert Map.new(rows) == moduledoc_defaults()

      # each is an option (a bad value names it); the Rust Config's names are not
      for name <- names do
        e = assert_raise ArgumentError, fn -> LsmIndex.new([{name, :not_a_value}]) end
        assert e.message =~ inspect(name)
        refute e.message =~ "unknown keys"
      end

      for rust_name <- [:on_overload, :verify_on_open, :secret] do
        assert_raise ArgumentError, ~r/unknown keys/, fn -> LsmIndex.new([{rust_name, nil}]) end
      end
    end
  end

  describe "scenario: README.md Elixir examples" do
    test "the README has Elixir examples" do
      assert length(@blocks) >= 2
    end

    for {code, i} <- Enum.with_index(@blocks) do
      @code code
      @tag :tmp_dir
      test "README Elixir example #{i + 1} runs", %{tmp_dir: dir} do
        previous = System.get_env("TMPDIR")
        System.put_env("TMPDIR", dir)

        try do
          Code.eval_string(@code)
        after
          if previous, do: System.put_env("TMPDIR", previous), else: System.delete_env("TMPDIR")
        end
      end
    end
  end
end
