defmodule LsmIndex.DemoTest do
  # The end-to-end demo's durable shape log, shapes and snapshot hand-off, without PostgreSQL.
  use ExUnit.Case, async: true

  alias LsmIndex.Demo.{Churn, ShapeLog, Shapes, Slot, Snapshot}

  describe "ShapeLog" do
    @describetag :tmp_dir
    test "frames replay in order; a torn tail is cut; a bad checksum is an error", %{tmp_dir: dir} do
      path = Path.join(dir, "shapes.log")
      log = ShapeLog.open(path)

      log =
        log
        |> ShapeLog.apply_ops([{1, :add, 10}, {1, :add, 11}, {2, :add, 10}])
        |> ShapeLog.commit(100)

      log = log |> ShapeLog.apply_ops([{1, :del, 10}, {2, :clear}]) |> ShapeLog.commit(200)
      # applied, never committed: lost in a crash
      log = ShapeLog.apply_ops(log, [{3, :add, 1}])
      :ok = ShapeLog.close(log)

      good = File.read!(path)
      File.write!(path, good <> <<0, 0, 0, 40, 1, 2>>)
      log = ShapeLog.open(path)
      assert {log.lsn, log.frames} == {200, 2}
      assert ShapeLog.rows(log, 1) == MapSet.new([11])
      assert ShapeLog.rows(log, 2) == MapSet.new()
      assert ShapeLog.rows(log, 3) == MapSet.new()
      :ok = ShapeLog.close(log)
      assert File.read!(path) == good

      <<head::binary-size(12), byte, rest::binary>> = good
      File.write!(path, <<head::binary, Bitwise.bxor(byte, 1), rest::binary>>)
      assert_raise RuntimeError, ~r/checksum mismatch/, fn -> ShapeLog.open(path) end
    end
  end

  describe "ShapeLog: shapes added and removed while streaming" do
    @describetag :tmp_dir
    test "snapshot rows, the adding intent, removal and stray ops survive a replay",
         %{tmp_dir: dir} do
      path = Path.join(dir, "shapes.log")
      shape = %{id: 7, table: "todos", where: "user_id = $1", params: ["3"]}
      snap = Snapshot.parse("10:14:11,12", 500)

      log =
        ShapeLog.open(path)
        |> ShapeLog.apply_ops([{1, :add, 5}, {2, :add, 5}])
        |> ShapeLog.commit(100)
        |> ShapeLog.apply_ops([{:adding, [7, 8]}])
        |> ShapeLog.commit(100)
        |> ShapeLog.apply_ops([{:shape_added, shape, [40, 41]}, {7, :add, 42}] |> fix(snap))
        |> ShapeLog.apply_ops([{:shape_removed, 2}, {2, :add, 6}, {1, :clear}, {1, :add, 9}])
        |> ShapeLog.commit(200)

      check = fn log ->
        assert log.lsn == 200
        assert ShapeLog.rows(log, 7) == MapSet.new([40, 41, 42])
        assert ShapeLog.rows(log, 1) == MapSet.new([9])
        assert ShapeLog.rows(log, 2) == MapSet.new()
        assert ShapeLog.all_rows(log) == %{1 => MapSet.new([9]), 7 => MapSet.new([40, 41, 42])}
        assert ShapeLog.size(log) == 4
        assert ShapeLog.added(log) == %{7 => shape}
        assert ShapeLog.snapshots(log) == %{7 => snap}
        assert ShapeLog.adding(log) == MapSet.new([8])
        assert ShapeLog.removed(log) == MapSet.new([2])
        assert ShapeLog.stray(log) == 1
      end

      check.(log)
      :ok = ShapeLog.close(log)
      log = ShapeLog.open(path)
      check.(log)
      :ok = ShapeLog.close(log)
    end
  end

  describe "Snapshot" do
    test "visibility: below xmin seen, at or past xmax not, in between unless in progress" do
      snap = Snapshot.parse("10:14:11,12", 0x5000)
      assert Snapshot.visible?(snap, 9)
      assert Snapshot.visible?(snap, 10)
      refute Snapshot.visible?(snap, 11)
      refute Snapshot.visible?(snap, 12)
      assert Snapshot.visible?(snap, 13)
      refute Snapshot.visible?(snap, 14)
      refute Snapshot.visible?(snap, 99)
      refute Snapshot.over?(snap, 0x5000)
      assert Snapshot.over?(snap, 0x5001)
      assert Snapshot.covers?(snap, nil)
      assert Snapshot.covers?(snap, 9)
      refute Snapshot.covers?(snap, 10)
      assert Snapshot.parse("5:5:", 1).xip == MapSet.new()
      assert_raise RuntimeError, ~r/epoch/, fn -> Snapshot.parse("4294967300:4294967301:", 1) end
    end
  end

  describe "Churn hand-off" do
    test "a new shape drops the ops of transactions its snapshot saw, until the stream passes it" do
      snap = Snapshot.parse("10:14:11,12", 500)
      churn = %Churn{handoffs: [{MapSet.new([7, 8]), snap}]}
      ops = [{7, :add, 1}, {3, :add, 1}, {8, :del, 2}, {8, :clear}]

      # xid 9 and 13 committed before the snapshot: their effect is in its rows
      assert Churn.hand_off(churn, 9, 400, ops) == [{3, :add, 1}]
      assert Churn.hand_off(churn, 13, 500, ops) == [{3, :add, 1}]
      # in progress at the snapshot, or begun after it: applied
      assert Churn.hand_off(churn, 11, 400, ops) == ops
      assert Churn.hand_off(churn, 14, 450, ops) == ops
      # past the snapshot's WAL position nothing is visible to it: the hand-off is over
      assert Churn.hand_off(churn, 9, 501, ops) == ops
      assert Churn.passed(churn, 500).handoffs == churn.handoffs
      assert Churn.passed(churn, 501).handoffs == []
      assert Churn.hand_off(%Churn{handoffs: []}, 9, 400, ops) == ops
    end
  end

  describe "Shapes" do
    test "the same seed makes the same shapes; parameters become untyped literals" do
      shapes = Shapes.generate(2000, 7, 200, 40)
      assert shapes == Shapes.generate(2000, 7, 200, 40)
      assert Enum.map(shapes, & &1.id) == Enum.to_list(0..1999)
      assert Enum.count(shapes, &(&1.params == [] and &1.id < 3)) == 3

      assert Shapes.sql(%{where: "user_id = $1 OR project_id = $2", params: ["7", "it's"]}) ==
               "user_id = '7' OR project_id = 'it''s'"
    end
  end

  defp fix(ops, snap),
    do:
      Enum.map(ops, fn
        {:shape_added, s, ids} -> {:shape_added, s, ids, snap}
        op -> op
      end)

  describe "Slot LSNs" do
    test "parse_lsn/1 and format_lsn/1 round-trip PostgreSQL's X/Y" do
      assert Slot.parse_lsn("0/152C3F0") == 0x152C3F0
      assert Slot.parse_lsn("1A/0") == 0x1A_0000_0000
      assert Slot.format_lsn(0x1A_0152_C3F0) == "1A/152C3F0"
    end
  end
end
