"""Getting adapters out of loralab: exports checked against the adapter they came from, and
published versions for a serving models folder or the hub.

    preflight.py       every argument and folder check of export / verify, before anything is
                       written
    extras.py          the ONNX libraries' check (the optional `loralab[export]` extra)
    source.py          the source adapter: its reference load (CPU, fp32) and weights' sha256
    probe.py           the inputs both models see: validation data, --inputs, or generated text
    outputs.py         one model's outputs on them: logits, decisions, greedy continuations, time
    fidelity.py        tolerance defaults and the comparison of two models' outputs
    merge.py           the LoRA merged into the base: a plain transformers model
    onnx_graph.py      the merged model through torch.onnx.export (dynamo), logits only
    onnx_model.py      an ONNX Runtime session that answers like a transformers model
    folders.py         the export folder's files, export.json, and opening a folder as a model
    model_card.py      the README.md written beside every export
    peft_export.py     the `peft` format: a clean self-contained adapter folder
    export_command.py  `loralab export`
    verify_command.py  `loralab verify`
    publish.py         `loralab publish`: adapter versions into a models folder or the hub
"""
