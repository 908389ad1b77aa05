defmodule LsmIndex.ReadmeTest do
  # The README's Elixir examples run as written (their `=` matches are the assertions).
  # Not async: examples that write files do so under System.tmp_dir!(), pointed at the
  # test's own directory here.
  use ExUnit.Case, async: false

  readme = Path.expand("../../README.md", __DIR__)
  @external_resource readme
  @blocks Regex.scan(~r/```elixir\n(.*?)```/s, File.read!(readme), capture: :all_but_first)
          |> List.flatten()

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
