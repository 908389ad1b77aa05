defmodule LsmIndex.CorruptionTest do
  # Every file kind damaged every way: `open` answers {:error, _} (or, for a torn log tail,
  # opens with a prefix of the writes) and the VM never goes down.
  use ExUnit.Case, async: true

  alias LsmIndex.Test.Wait

  @moduletag :tmp_dir
  @opts [lanes: 2, overlay_limit: 64]

  # 300 keys in segments (compacted), 50 more only in the log (flushed, never closed)
  defp build(dir) do
    Task.async(fn ->
      {:ok, index} = LsmIndex.open(dir, @opts)
      :ok = LsmIndex.add_many(index, for(i <- 1..300, do: {i, 1}))
      :ok = LsmIndex.compact(index)
      :ok = LsmIndex.flush(index)
      :ok = LsmIndex.add_many(index, for(i <- 301..350, do: {i, 2}))
      :ok = LsmIndex.flush(index)
    end)
    |> Task.await()

    files = %{
      segment: hd(Path.wildcard(Path.join(dir, "segments/lane-*/*.seg"))),
      manifest: hd(Path.wildcard(Path.join(dir, "MANIFEST-*.json"))),
      log: dir |> Path.join("wal-*.log") |> Path.wildcard() |> Enum.max_by(&File.stat!(&1).size)
    }

    {files, Map.new(files, fn {kind, path} -> {kind, File.read!(path)} end)}
  end

  # the index `build` left open is freed shortly after its process exits
  defp open(dir), do: Wait.open_when_released(dir, @opts)

  defp close({:ok, index}), do: LsmIndex.close(index)
  defp close(_), do: :ok

  defp flip(bytes, at) do
    <<head::binary-size(at), b, rest::binary>> = bytes
    <<head::binary, Bitwise.bxor(b, 0x5A), rest::binary>>
  end

  describe "open/2" do
    test "flipped bytes in every file kind are refused", %{tmp_dir: dir} do
      {files, originals} = build(dir)

      for kind <- [:segment, :manifest, :log] do
        path = files[kind]
        bytes = originals[kind]
        # positions spread over the file: every section of a segment, every part of a frame
        for at <- Enum.uniq(Enum.map(0..40, &div(&1 * (byte_size(bytes) - 1), 40))) do
          File.write!(path, flip(bytes, at))
          result = open(dir)
          close(result)

          assert {:error, {reason, message}} = result,
                 "#{kind} byte #{at} of #{byte_size(bytes)}: #{inspect(result)}"

          assert reason in [:corrupt, :checksum_mismatch, :io], "#{kind} byte #{at}: #{reason}"
          assert is_binary(message)
        end

        File.write!(path, bytes)
      end

      assert {:ok, index} = open(dir)
      assert LsmIndex.lookup(index, 350) == [2]
    end

    test "truncated and deleted files", %{tmp_dir: dir} do
      {files, originals} = build(dir)

      # a segment or manifest cut short, or gone: refused
      for kind <- [:segment, :manifest], cut <- [0, 1, div(byte_size(originals[kind]), 2)] do
        File.write!(files[kind], binary_part(originals[kind], 0, cut))
        result = open(dir)
        close(result)
        assert {:error, {reason, _}} = result, "#{kind} cut to #{cut}"
        assert reason in [:corrupt, :checksum_mismatch, :io], "#{kind} cut to #{cut}: #{reason}"
        File.write!(files[kind], originals[kind])
      end

      for kind <- [:segment, :manifest] do
        File.rm!(files[kind])
        result = open(dir)
        close(result)
        # a segment the manifest names is missing; without a manifest, the files left are
        # not taken for an empty index
        assert {:error, {reason, message}} = result, "#{kind} deleted"
        assert {kind, reason} in [segment: :io, manifest: :corrupt], "#{kind}: #{message}"
        File.write!(files[kind], originals[kind])
      end

      # a log cut mid-frame is a torn tail: it opens with a prefix of the logged writes
      log = originals[:log]
      File.write!(files[:log], binary_part(log, 0, byte_size(log) - 7))
      assert {:ok, index} = open(dir)
      assert LsmIndex.lookup(index, 300) == [1]
      # exactly the last logged write is gone (which key it was depends on the lane order)
      assert LsmIndex.size(index) == 349
      assert Enum.count(301..350, &(LsmIndex.lookup(index, &1) == [2])) == 49
      :ok = LsmIndex.close(index)
    end
  end
end
