"""Opens an NWB file written by `spikeflow export` with h5py and checks what a pynwb user expects:
the NWBFile root and its required datasets, the standard top-level groups, the electrodes table,
the units table with its ragged spike times, the run's extent as an epoch, the predictions TimeSeries and its timing table, and,
with --session, behaviour and trials. Every object with a neurodata_type has a namespace and a
UUID4 object_id. Exit 0 and one summary line when all is there; else the first problem."""
import re
import sys

import h5py

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def main(path, with_session):
    f = h5py.File(path, "r")
    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)

    need(text(f.attrs.get("neurodata_type", "")) == "NWBFile", "root neurodata_type != NWBFile")
    need(text(f.attrs.get("namespace", "")) == "core", "root namespace != core")
    need(text(f.attrs.get("nwb_version", "")).startswith("2."), "root nwb_version is not 2.x")
    for ds in ("identifier", "session_description", "session_start_time", "timestamps_reference_time",
               "file_create_date"):
        need(ds in f and isinstance(f[ds], h5py.Dataset), "missing dataset /" + ds)
    for g in ("acquisition", "analysis", "processing", "stimulus/presentation", "stimulus/templates", "general",
              "general/devices", "general/extracellular_ephys"):
        need(g in f and isinstance(f[g], h5py.Group), "missing group /" + g)

    el = f["general/extracellular_ephys/electrodes"]
    need(text(el.attrs["neurodata_type"]) == "DynamicTable", "electrodes is not a DynamicTable")
    cols = [text(c) for c in el.attrs["colnames"]]
    for c in ("location", "group", "group_name"):
        need(c in cols and c in el, "electrodes lacks column " + c)
    need(f[el["group"][0]].name == "/general/extracellular_ephys/channels" if len(el["group"]) else True,
         "electrodes/group does not reference the ElectrodeGroup")
    need(text(f["general/extracellular_ephys/channels"].attrs["neurodata_type"]) == "ElectrodeGroup",
         "channels is not an ElectrodeGroup")
    need("device" in f["general/extracellular_ephys/channels"], "ElectrodeGroup has no device link")

    u = f["units"]
    need(text(u.attrs["neurodata_type"]) == "Units", "units is not Units")
    for c in ("spike_times", "spike_times_index", "id", "electrodes"):
        need(c in u, "units lacks " + c)
    need(text(u["spike_times_index"].attrs["neurodata_type"]) == "VectorIndex", "spike_times_index is not a VectorIndex")
    need(f[u["spike_times_index"].attrs["target"]].name == "/units/spike_times", "VectorIndex.target is wrong")
    need(f[u["electrodes"].attrs["table"]].name == el.name, "units/electrodes.table is wrong")
    index = u["spike_times_index"][:]
    need(len(index) == len(u["id"]) and (len(index) == 0 or index[-1] == len(u["spike_times"])),
         "spike_times_index does not cover spike_times")

    ts = f["processing/spikeflow/predictions"]
    need(text(ts.attrs["neurodata_type"]) == "TimeSeries", "predictions is not a TimeSeries")
    need(ts["data"].shape[0] == ts["timestamps"].shape[0], "predictions data and timestamps differ in length")
    need("unit" in ts["data"].attrs, "predictions/data has no unit")
    timing = f["processing/spikeflow/prediction_timing"]
    need(timing["id"].shape[0] == ts["data"].shape[0], "prediction_timing rows != predictions")
    for c in ("seq", "start_ns", "end_ns", "flags", "n_tokens", "publish_ns"):
        need(c in timing, "prediction_timing lacks " + c)
    need(len(text(f["general/data_collection"][()])) > 0, "no config in /general/data_collection")
    need("identity" in text(f["general/notes"][()]), "no model identity in /general/notes")

    ep = f["intervals/epochs"]
    need(text(ep.attrs["neurodata_type"]) == "TimeIntervals", "epochs is not TimeIntervals")
    need(ep["start_time"].shape == (1,) and ep["stop_time"][0] > ep["start_time"][0],
         "epochs does not hold the run's extent")
    need(f[ep["tags_index"].attrs["target"]].name == "/intervals/epochs/tags", "epochs tags_index.target is wrong")

    if with_session:
        tr = f["intervals/trials"]
        need(text(tr.attrs["neurodata_type"]) == "TimeIntervals", "trials is not TimeIntervals")
        need(tr["start_time"].shape == tr["stop_time"].shape, "trials start/stop differ")
        need(text(f["processing/behavior"].attrs["neurodata_type"]) == "ProcessingModule",
             "behavior is not a ProcessingModule")

    typed = []

    def visit(name, obj):
        if "neurodata_type" in obj.attrs:
            typed.append(name)
            need("namespace" in obj.attrs, name + " has no namespace")
            need(UUID4.match(text(obj.attrs.get("object_id", ""))) is not None, name + " has no UUID4 object_id")

    f.visititems(visit)
    if problems:
        print("nwb problem: " + "; ".join(problems))
        return 1
    print("nwb ok: %d typed objects, %d units, %d spikes, %d predictions"
          % (len(typed) + 1, len(u["id"]), len(u["spike_times"]), ts["data"].shape[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], "--session" in sys.argv[2:]))
