"""Write a llama-shaped GGUF with random weights, for speed measurements where a real model
cannot travel (the device machine takes 64 MiB of files; the bundled model is 98 MB). Speed
does not depend on the weights' values, only on the shapes and the quantization.

    python bench/make_random_gguf.py OUT.gguf [--layers 16] [--embd 2048] [--ff 8192]
        [--heads 32] [--kv-heads 8] [--vocab 32000] [--type q8_0|f16]

Needs the `gguf` package (pip's, or llama.cpp's own gguf-py on PYTHONPATH) and numpy. The
vocabulary is a SentencePiece-style one (control tokens, 256 byte tokens, then made-up pieces)
with a ChatML template, so Hearth's engine can chat with it (the text is nonsense).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> int:
    import gguf

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--embd", type=int, default=2048)
    parser.add_argument("--ff", type=int, default=8192)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--type", choices=("q8_0", "f16"), default="q8_0")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    qtype = gguf.GGMLQuantizationType.Q8_0 if args.type == "q8_0" else gguf.GGMLQuantizationType.F16
    head_dim = args.embd // args.heads

    w = gguf.GGUFWriter(str(args.out), "llama")
    w.add_name(f"random-llama-{args.layers}x{args.embd}-{args.type}")
    w.add_context_length(8192)
    w.add_embedding_length(args.embd)
    w.add_block_count(args.layers)
    w.add_feed_forward_length(args.ff)
    w.add_head_count(args.heads)
    w.add_head_count_kv(args.kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(
        gguf.LlamaFileType.MOSTLY_Q8_0 if args.type == "q8_0" else gguf.LlamaFileType.MOSTLY_F16
    )

    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [gguf.TokenType.UNKNOWN, *[gguf.TokenType.CONTROL] * 4]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    # Real pieces for the characters and words the benchmarks' prompts use, so a prompt is
    # about as many tokens as with a real model (byte fallback alone tripled its length).
    chars = [chr(c) for c in range(33, 127)]
    words = (  # noqa: SIM905 (a list literal of them is 200 lines)
        "the a of and to in is it that was for on are with as he be at by this had not but from "
        "or have an they which one you were her all she there would their we him been has when "
        "who will more no if out so said what up its about into than them can only other new "
        "some could time these two may then do first any my now such like our over man me even "
        "most made after also did many before must through back years where much your way well "
        "down should because each just those people how too little state good very make world "
        "still own see men work long get here between both life being under never day same "
        "another know while last might us great old year off come since against go came right "
        "used take three Run Fact lighthouse steps Summarise Write story keeper sea"
    ).split()
    # SentencePiece merges pairs of pieces it has, so a word needs every prefix as a piece.
    prefixes = [f"\u2581{w}"[:k] for w in words for k in range(2, len(w) + 2)]
    digits = [f"{n:02d}" for n in range(100)]
    known = [*chars, *(f"\u2581{c}" for c in chars), *prefixes, *digits]
    known = list(dict.fromkeys(known))
    tokens += known[: args.vocab - len(tokens)]
    pieces = args.vocab - len(tokens)
    tokens += [f"\u2581w{i}" for i in range(pieces)]
    types += [gguf.TokenType.NORMAL] * (len(tokens) - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([-float(i) for i in range(len(tokens))])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(4)
    w.add_add_bos_token(False)
    w.add_chat_template(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )

    def tensor(name: str, shape: tuple[int, ...], quantize: bool = True) -> None:
        data = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
        if quantize and qtype == gguf.GGMLQuantizationType.Q8_0 and shape[-1] % 32 == 0:
            w.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        elif quantize:
            w.add_tensor(name, data.astype(np.float16))
        else:
            w.add_tensor(name, np.ones(shape, dtype=np.float32))  # norms

    e, f, kv = args.embd, args.ff, args.kv_heads * head_dim
    tensor("token_embd.weight", (args.vocab, e))
    for i in range(args.layers):
        p = f"blk.{i}."
        tensor(p + "attn_norm.weight", (e,), quantize=False)
        tensor(p + "attn_q.weight", (e, e))
        tensor(p + "attn_k.weight", (kv, e))
        tensor(p + "attn_v.weight", (kv, e))
        tensor(p + "attn_output.weight", (e, e))
        tensor(p + "ffn_norm.weight", (e,), quantize=False)
        tensor(p + "ffn_gate.weight", (f, e))
        tensor(p + "ffn_up.weight", (f, e))
        tensor(p + "ffn_down.weight", (e, f))
    tensor("output_norm.weight", (e,), quantize=False)
    tensor("output.weight", (args.vocab, e))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
