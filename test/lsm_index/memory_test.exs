defmodule LsmIndex.MemoryTest do
  # Memory the index holds, as the operator sees it (issue 14): not timed, measured against a
  # baseline in a VM of its own (`LsmIndex.Test.Memory`).
  use ExUnit.Case, async: true

  alias LsmIndex.Test.Memory

  describe "open/2" do
    @tag :tmp_dir
    @tag timeout: 300_000
    test "a persistent index of 1M keys holds at most 2x its heap + 16 MiB of anonymous memory",
         %{tmp_dir: dir} do
      {growth, heap} =
        Memory.in_fresh_vm(
          {Memory, :persistent_anon_growth, [Path.join(dir, "index"), 1_000_000]}
        )

      # the segments are mapped from their files: only the heap parts should be anonymous
      assert growth <= 2 * heap + 16 * 1024 * 1024,
             "anonymous growth #{growth} B for #{heap} B of heap"
    end
  end
end
