defmodule LsmIndex.PersistTest do
  use ExUnit.Case, async: true

  alias LsmIndex.Test.Wait

  @moduletag :tmp_dir
  @opts [lanes: 2, overlay_limit: 16]

  describe "open/2" do
    test "what was flushed or closed is there after reopening", %{tmp_dir: dir} do
      {:ok, index} = LsmIndex.open(dir, @opts)
      :ok = LsmIndex.add_many(index, for(i <- 1..500, do: {i, rem(i, 9)}))
      :ok = LsmIndex.drop_handle(index, 3)
      :ok = LsmIndex.flush(index)
      :ok = LsmIndex.add(index, "late", 1)
      :ok = LsmIndex.close(index)

      {:ok, index} = LsmIndex.open(dir, @opts)
      assert LsmIndex.lookup(index, 10) == [1]
      assert LsmIndex.lookup(index, 12) == []
      assert LsmIndex.lookup(index, "late") == [1]
      # 56 keys had handle 3 (3, 12, ..., 498); "late" is one more
      assert LsmIndex.size(index) == 500 - 56 + 1
      assert LsmIndex.stats(index).segments > 0
    end

    test "count_handles: the counts are recounted at open", %{tmp_dir: dir} do
      opts = [count_handles: true] ++ @opts
      {:ok, index} = LsmIndex.open(dir, opts)
      :ok = LsmIndex.add_many(index, for(i <- 1..500, do: {i, rem(i, 9)}))
      :ok = LsmIndex.drop_handle(index, 3)
      :ok = LsmIndex.remove(index, 1, 1)
      :ok = LsmIndex.close(index)

      {:ok, index} = LsmIndex.open(dir, opts)
      # 56 keys had handle 3 (3, 12, ..., 498), dropped; 1 of handle 1's 56 removed
      assert LsmIndex.handles(index) == [0, 1, 2, 4, 5, 6, 7, 8]
      assert {LsmIndex.handle_count(index, 1), LsmIndex.handle_count(index, 3)} == {55, 0}
      assert LsmIndex.handle_count(index, 2) == 56
    end

    test "a second open of a directory gets {:error, :locked}", %{tmp_dir: dir} do
      {:ok, index} = LsmIndex.open(dir, @opts)
      assert LsmIndex.open(dir, @opts) == {:error, :locked}
      :ok = LsmIndex.close(index)
      assert {:ok, _} = LsmIndex.open(dir, @opts)
    end

    test "a damaged segment file is refused with {:error, {kind, message}}", %{tmp_dir: dir} do
      {:ok, index} = LsmIndex.open(dir, @opts)
      :ok = LsmIndex.add_many(index, for(i <- 1..200, do: {i, 1}))
      :ok = LsmIndex.compact(index)
      :ok = LsmIndex.close(index)

      [file | _] = Path.wildcard(Path.join(dir, "segments/lane-*/*.seg"))
      bytes = File.read!(file)
      <<head::binary-size(300), byte, rest::binary>> = bytes
      File.write!(file, <<head::binary, Bitwise.bxor(byte, 1), rest::binary>>)
      assert {:error, {kind, message}} = LsmIndex.open(dir, @opts)
      assert kind in [:checksum_mismatch, :corrupt]
      assert message =~ file

      File.rm!(file)
      assert {:error, {:io, _}} = LsmIndex.open(dir, @opts)
    end

    test "verify: false opens on headers alone: damage inside a section is caught by a merge only",
         %{tmp_dir: dir} do
      opts = [lanes: 1, overlay_limit: 64]
      {:ok, index} = LsmIndex.open(dir, opts)
      :ok = LsmIndex.add_many(index, for(i <- 1..1_000, do: {i, rem(i, 9)}))
      :ok = LsmIndex.compact(index)
      :ok = LsmIndex.close(index)
      want = for i <- 1..1_000, do: [rem(i, 9)]

      # an undamaged index opens and answers as with verify: true
      {:ok, index} = LsmIndex.open(dir, [verify: false] ++ opts)
      assert LsmIndex.lookup_many(index, Enum.to_list(1..1_000)) == want
      :ok = LsmIndex.close(index)

      # every byte of the records section flipped (the header's section table says where)
      [file] = Path.wildcard(Path.join(dir, "segments/lane-*/*.seg"))
      bytes = File.read!(file)
      <<_::binary-size(48 + 2 * 24), at::little-64, len::little-64, _::binary>> = bytes
      <<head::binary-size(at), records::binary-size(len), tail::binary>> = bytes
      flipped = for <<b <- records>>, into: <<>>, do: <<Bitwise.bxor(b, 0xFF)>>
      File.write!(file, head <> flipped <> tail)

      assert {:error, {:checksum_mismatch, message}} = LsmIndex.open(dir, opts)
      assert message =~ "records section"

      # verify: false opens it; lookups answer from the damaged bytes: keys go missing or
      # come back with other handles (or raise LsmIndex.Error where a bounds check fails)
      {:ok, index} = LsmIndex.open(dir, [verify: false] ++ opts)

      answers =
        for i <- 1..1_000 do
          try do
            LsmIndex.lookup(index, i)
          rescue
            e in LsmIndex.Error -> e.reason
          end
        end

      wrong = Enum.count(Enum.zip(answers, want), fn {got, w} -> got != w end)
      assert wrong > 500, "#{wrong} of 1,000 keys answered wrongly"

      # but a merge reads its inputs whole: the damage is refused (the index is poisoned,
      # naming it), not copied into a new segment whose checksums hold
      :ok = LsmIndex.add(index, 1_001, 1)
      assert {:error, reason} = LsmIndex.compact(index)
      assert inspect(reason) =~ "records section"
      LsmIndex.close(index)
      assert File.read!(file) == head <> flipped <> tail

      # the header is checked either way
      File.write!(file, flip_at(bytes, 20))

      for verify <- [true, false] do
        # (the poisoned index's last job may hold the lock a moment after close/1)
        assert {:error, {:checksum_mismatch, message}} =
                 Wait.open_when_released(dir, [verify: verify] ++ opts)

        assert message =~ "header"
      end
    end

    test "bad arguments raise ArgumentError" do
      assert_raise ArgumentError, ~r/:sync/, fn -> LsmIndex.open("/tmp/x", sync: :sometimes) end
      assert_raise ArgumentError, ~r/directory path/, fn -> LsmIndex.open(:nope, []) end
      assert_raise ArgumentError, ~r/:verify/, fn -> LsmIndex.open("/tmp/x", verify: 1) end
      assert_raise ArgumentError, fn -> LsmIndex.open("/tmp/x", bogus: 1) end
    end
  end

  describe "open!/2" do
    test "returns the index; a locked directory raises LsmIndex.Error", %{tmp_dir: dir} do
      index = LsmIndex.open!(dir, @opts)
      :ok = LsmIndex.add(index, 1, 1)

      error = assert_raise LsmIndex.Error, ~r/locked/, fn -> LsmIndex.open!(dir, @opts) end
      assert error.reason == :locked
      :ok = LsmIndex.close(index)
      assert LsmIndex.lookup(LsmIndex.open!(dir, @opts), 1) == [1]
    end

    test "bad arguments raise ArgumentError, as for open/2" do
      assert_raise ArgumentError, ~r/directory path/, fn -> LsmIndex.open!(:nope) end
    end
  end

  describe "flush/1" do
    test "every :sync mode keeps flushed writes", %{tmp_dir: dir} do
      for mode <- [:flush, :always, :none] do
        path = Path.join(dir, to_string(mode))
        # a process writes, flushes and exits without closing: the log brings the writes back
        Task.async(fn ->
          {:ok, index} = LsmIndex.open(path, [sync: mode] ++ @opts)
          :ok = LsmIndex.add_many(index, for(i <- 1..100, do: {i, 7}))
          :ok = LsmIndex.flush(index)
        end)
        |> Task.await()

        {:ok, again} = Wait.open_when_released(path, @opts)
        assert LsmIndex.lookup(again, 100) == [7]
      end
    end
  end

  describe "flush!/1" do
    test "returns :ok; a closed index raises ArgumentError", %{tmp_dir: dir} do
      index = LsmIndex.open!(dir, @opts)
      :ok = LsmIndex.add(index, 1, 1)
      assert LsmIndex.flush!(index) == :ok
      :ok = LsmIndex.close(index)
      assert_raise ArgumentError, ~r/closed/, fn -> LsmIndex.flush!(index) end
    end
  end

  describe "backup/2" do
    test "a backup taken while a process writes opens like any index", %{tmp_dir: dir} do
      {:ok, index} = LsmIndex.open(Path.join(dir, "live"), @opts)
      :ok = LsmIndex.add_many(index, for(i <- 1..1_000, do: {i, 1}))
      :ok = LsmIndex.flush(index)

      writer =
        Task.async(fn ->
          for i <- 1_001..5_000, do: :ok = LsmIndex.add(index, i, 2)
        end)

      backup = Path.join(dir, "backup")
      :ok = LsmIndex.backup(index, backup)
      # 4,000 single writes; slow only on a loaded machine (a deadline, not a timing)
      Task.await(writer, Wait.hang_guard())
      assert {:error, {:io, _}} = LsmIndex.backup(index, backup)
      :ok = LsmIndex.close(index)

      {:ok, copy} = LsmIndex.open(backup, @opts)
      assert LsmIndex.lookup(copy, 1_000) == [1]
      size = LsmIndex.size(copy)
      assert size >= 1_000 and size <= 5_000
      # a prefix: if key i arrived, every key before it did too
      assert LsmIndex.lookup(copy, size) != []
      assert LsmIndex.lookup(copy, size + 1) == []
      assert_raise ArgumentError, fn -> LsmIndex.backup(copy, 42) end
    end
  end

  describe "backup!/2" do
    test "returns :ok; a failed backup raises LsmIndex.Error", %{tmp_dir: dir} do
      index = LsmIndex.open!(Path.join(dir, "live"), @opts)
      :ok = LsmIndex.add(index, 1, 1)
      backup = Path.join(dir, "backup")
      assert LsmIndex.backup!(index, backup) == :ok
      error = assert_raise LsmIndex.Error, fn -> LsmIndex.backup!(index, backup) end
      assert error.reason == :io and is_binary(error.message)
      :ok = LsmIndex.close(index)
      assert LsmIndex.lookup(LsmIndex.open!(backup, @opts), 1) == [1]
    end
  end

  describe "close/1" do
    test "closing again is :ok; every other call but (un)subscribe and wait_idle raises",
         %{tmp_dir: dir} do
      {:ok, persistent} = LsmIndex.open(dir, @opts)
      {:ok, in_memory} = LsmIndex.new(@opts)

      for index <- [persistent, in_memory] do
        :ok = LsmIndex.add(index, 1, 1)
        assert LsmIndex.close(index) == :ok
        assert LsmIndex.close(index) == :ok
        assert LsmIndex.close!(index) == :ok

        for call <- [
              &LsmIndex.lookup(&1, 1),
              &LsmIndex.lookup_many(&1, [1]),
              &LsmIndex.lookup_many(&1, List.duplicate(1, 1_000)),
              &LsmIndex.lookup_many_packed(&1, LsmIndex.pack_keys([1])),
              &LsmIndex.lookup_many_packed(&1, LsmIndex.pack_keys(List.duplicate(1, 1_000))),
              &LsmIndex.add(&1, 1, 1),
              &LsmIndex.remove(&1, 1, 1),
              &LsmIndex.add_many(&1, [{1, 1}]),
              &LsmIndex.remove_many(&1, [{1, 1}]),
              &LsmIndex.drop_handle(&1, 1),
              &LsmIndex.flush/1,
              &LsmIndex.flush!/1,
              &LsmIndex.backup(&1, Path.join(dir, "backup")),
              &LsmIndex.compact/1,
              &LsmIndex.size/1,
              &LsmIndex.stats/1
            ] do
          assert_raise ArgumentError, ~r/the index was closed/, fn -> call.(index) end
        end

        # no job runs on a closed index: nothing to wait for or to report
        assert LsmIndex.wait_idle(index) == :ok
        assert LsmIndex.subscribe(index) == :ok
        assert LsmIndex.unsubscribe(index) == :ok
      end

      # the directory was released
      assert {:ok, index} = LsmIndex.open(dir, @opts)
      assert LsmIndex.lookup(index, 1) == [1]
    end
  end

  describe "close!/1" do
    test "returns :ok, and :ok again on a closed index", %{tmp_dir: dir} do
      index = LsmIndex.open!(dir, @opts)
      :ok = LsmIndex.add(index, 1, 1)
      assert LsmIndex.close!(index) == :ok
      assert LsmIndex.close!(index) == :ok
      assert LsmIndex.lookup(LsmIndex.open!(dir, @opts), 1) == [1]
    end
  end

  defp flip_at(bytes, at) do
    <<head::binary-size(at), b, rest::binary>> = bytes
    <<head::binary, Bitwise.bxor(b, 0xFF), rest::binary>>
  end
end
