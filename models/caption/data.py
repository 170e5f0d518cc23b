"""Caption/VQA data: compact vocabulary, the GENERATED VQA sets and box-tile features.

    /usr/bin/python3 -m models.caption.data            # writes everything below (deterministic, seed 0)

Outputs (committed, small):
  models/caption/vocab.json                 compact CLIP-BPE vocabulary (same scheme/format as
                                            models/retrieval/vocab.json) over TRAIN text only
  models/caption/vqa/generated_train.jsonl  GENERATED questions (label "generated") on RSICD train images
                                            and on aerial-cars/DOTA train tiles
  models/caption/vqa/generated_val.jsonl    the same for RSICD val images and aerial-cars/DOTA val tiles
  models/caption/vqa/rsivqa_theme_{train,val}.jsonl   the PUBLISHED RSIVQA theme questions
                                            (shared data/rsivqa/rsicd_theme.txt) split like RSICD
Outputs (gitignored cache): models/cache/caption_tiles_cut19/{train,val}.npy: MobileNetV2 grid
  [N,1280,7,7] (all of `features`, frozen = the retrieval image tower's grid before any
  stage-2 adapter) of the 224x224 tiles that the box questions are about.

Question types (-> expert that answers them):
  scene     "what type of scene is this?"  answer = RSICD scene label      (generated, labels.json)
  theme     published RSIVQA theme question                               (published)
  presence  "is there a X in this image?" yes/no                          (generated: captions = weak
            labels: "no" means no caption mentions X) / scene labels (SCENE_HAS / SCENE_LACKS: a port
            has boats, a desert has none) / boxes (exact)
  count     "how many X are there?"  number                               (generated: number words in the
            captions, majority over the 5) / boxes (exact count of box centres in the tile)
  relation  "what is <rel> the X?" -> Y  and "is the X <rel> Y?" yes/no   (generated from caption phrases
            "X is/are <rel> ... Y"; negatives are weak)
Synonym groups (SYNONYM_GROUPS): surface forms that name the same object, e.g. boat/ship (RSICD port
captions mostly say "boats", back-translated paraphrases say "ships") and plane/airplane (+ "aircraft").
A caption mention of any form of a group is a mention of the whole group:
  - presence "yes": the object is drawn as before among the literally mentioned OBJECTS, then the question
    word is drawn uniformly among the group's question forms (boat/ship, plane/airplane), so "are there any
    ships?" is asked (and answered "yes") on images whose captions only say "boats"; an object named only
    by a mention-only alias (e.g. "aircraft", "sea") also gets a presence "yes" question;
  - presence "no" and relation yes/no negatives never name a member of a mentioned group (a drawn
    negative whose group is mentioned is redrawn among the groups that are not); negatives of a
    multi-form group also use a random form, so no form is tied to one answer;
  - counts vote per group (e.g. "two boats" + "two ships" agree; "two boats" + "three ships" disagree ->
    no question); the number word may precede any question form; the noun is a random question form;
  - relations: pairs of the same group are skipped; negatives as above.
  All synonym draws use their own stream (random.Random(f"{SEED}:synonyms:{split}")), so the main stream
  (seed 0) -- every other question and the choice of the box tiles (hence the tile feature cache and
  models.caption.features' projected tiles) -- is exactly as before the synonym groups were introduced.
  Only true synonyms are grouped; different things (pond/lake, house/building, track/railway) are not.
Splits: RSICD train images -> train, val images -> val (val.jsonl is never trained on). aerial-cars
and DOTA follow models/detection/data.py (whole groups held out: MOS* and DJI_0762 -> val; harlem
(evaluation-only licence) is not used at all; DOTA P0706 top half -> train, bottom half -> val).
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List

import numpy as np

from ..rslens import paths
from ..rslens.clip_tokenizer import ClipBPE, CompactTokenizer
from ..rslens.data import read_labels, read_split

HERE = Path(__file__).resolve().parent
VOCAB_PATH = HERE / "vocab.json"
VQA_DIR = HERE / "vqa"
TILE_CACHE = "caption_tiles_cut19"
MAX_LENGTH = 40          # stored in vocab.json; the caption model uses its own prefix/target limits
MIN_COUNT = 2
SEED = 0

CAPTION_INSTRUCTION = "describe the image."
TYPE_TO_EXPERT = {"caption": None, "scene": 0, "theme": 0, "presence": 1, "count": 1, "relation": 2}
EXPERT_ROLES = ["scene and theme", "objects, presence and counts", "spatial relations and layout"]

# object nouns (singular, plural) used for presence/count/relation questions
OBJECTS = [("building", "buildings"), ("tree", "trees"), ("car", "cars"), ("road", "roads"), ("river", "rivers"),
           ("bridge", "bridges"), ("plane", "planes"), ("boat", "boats"), ("ship", "ships"), ("pond", "ponds"),
           ("playground", "playgrounds"), ("storage tank", "storage tanks"), ("house", "houses"),
           ("parking lot", "parking lots"), ("lake", "lakes"), ("beach", "beaches"), ("church", "churches"),
           ("pool", "pools"), ("tennis court", "tennis courts"), ("basketball court", "basketball courts"),
           ("baseball field", "baseball fields"), ("football field", "football fields"),
           ("railway", "railways"), ("runway", "runways"), ("mountain", "mountains"), ("farmland", "farmlands"),
           ("meadow", "meadows"), ("factory", "factories"), ("stadium", "stadiums"), ("viaduct", "viaducts"),
           ("ocean", "oceans"), ("square", "squares"), ("forest", "forests"), ("train", "trains"),
           ("island", "islands"), ("lawn", "lawns"), ("desert", "deserts")]
# Synonym groups. "forms": (singular, plural) question words -- the OBJECTS entries of the group plus extra
# forms that are in the vocabulary; "aliases": extra caption words that count as a mention of the group but are
# never used in questions (ungrammatical with "a"/plural templates or rare). Objects not listed form a group
# of their own. Only true synonyms (never e.g. pond/lake, house/building, track/railway).
SYNONYM_GROUPS = [
    {"forms": [("boat", "boats"), ("ship", "ships")], "aliases": ["vessel", "vessels"]},
    {"forms": [("plane", "planes"), ("airplane", "airplanes")], "aliases": ["aircraft", "aircrafts"]},
    {"forms": [("ocean", "oceans")], "aliases": ["sea"]},
    {"forms": [("car", "cars")], "aliases": ["automobile", "automobiles"]},
    {"forms": [("railway", "railways")], "aliases": ["railroad", "railroads"]},
    {"forms": [("football field", "football fields")], "aliases": ["soccer field", "soccer fields"]},
]
NUM_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
             "ten": 10}
RELATIONS = ["near", "next to", "beside", "surrounded by", "around", "along", "between", "in front of",
             "close to", "on both sides of", "on one side of", "across"]


def norm_text(s: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", s.lower()))


def _obj_pattern():
    alts = []
    for i, (sg, pl) in enumerate(OBJECTS):
        alts.append((pl, i))
        alts.append((sg, i))
    alts.sort(key=lambda a: -len(a[0]))
    return alts


_OBJ_ALTS = _obj_pattern()
_OBJ_RE = "(" + "|".join(re.escape(a) for a, _ in _OBJ_ALTS) + ")"
_OBJ_IDX = {a: i for a, i in _OBJ_ALTS}
_DET = r"(?:(?:a|an|the|some|many|several|lots of|a lot of|two|three|four|five|green|large|small|big|tall|" \
       r"white|long|dense|few|other|curved|red|grey|gray|blue|busy|wide|huge|little)\s+){0,3}"
_REL_RE = re.compile(r"\b" + _OBJ_RE + r"\s+(?:is|are)\s+(?:located\s+|built\s+|parked\s+)?(" +
                     "|".join(re.escape(r) for r in sorted(RELATIONS, key=len, reverse=True)) + r")\s+" + _DET +
                     _OBJ_RE + r"\b")


def _groups():
    """-> group of each OBJECTS index, question forms [(sg, pl)] per group, caption words -> group."""
    sg_idx = {sg: i for i, (sg, _) in enumerate(OBJECTS)}
    group_of = [-1] * len(OBJECTS)
    forms, words = [], {}
    for g in SYNONYM_GROUPS:
        gid = len(forms)
        forms.append(list(g["forms"]))
        for sg, pl in g["forms"]:
            if sg in sg_idx:
                group_of[sg_idx[sg]] = gid
            words[sg] = words[pl] = gid
        for a in g.get("aliases", []):
            words[a] = gid
    for i, (sg, pl) in enumerate(OBJECTS):
        if group_of[i] < 0:
            group_of[i] = len(forms)
            forms.append([(sg, pl)])
            words[sg] = words[pl] = group_of[i]
    return group_of, forms, words


GROUP_OF, GROUP_FORMS, _GROUP_WORDS = _groups()
_GROUP_WORDS_SORTED = sorted(_GROUP_WORDS, key=lambda w: -len(w))
_FORM_IDX = {w: g for g, fs in enumerate(GROUP_FORMS) for f in fs for w in f}   # question forms -> group
_FORM_PLURAL = {pl for fs in GROUP_FORMS for _, pl in fs}
_COUNT_G_RE = re.compile(r"\b(" + "|".join(NUM_WORDS) + r")\s+(?:\w+\s+){0,2}?(" +
                         "|".join(re.escape(w) for w in sorted(_FORM_IDX, key=lambda w: -len(w))) + r")\b")


def mentioned_groups(caps: List[str]) -> set:
    """Groups (see SYNONYM_GROUPS) named by any form or alias in any caption."""
    found = set()
    for c in caps:
        t = " " + norm_text(c) + " "
        for w in _GROUP_WORDS_SORTED:
            if f" {w} " in t:
                found.add(_GROUP_WORDS[w])
    return found


def pick_form(group: int, srng: random.Random):
    """(singular, plural) question words of a group; a random one for multi-form groups (synonym stream)."""
    fs = GROUP_FORMS[group]
    return fs[0] if len(fs) == 1 else srng.choice(fs)


def counts_by_group(caps: List[str]) -> Dict[int, int]:
    """Object counts from number words: votes per synonym group (any question form after the number word);
    kept when at least two captions agree and none disagrees. -> {group: n}"""
    votes: Dict[int, Counter] = {}
    for c in caps:
        for m in _COUNT_G_RE.finditer(norm_text(c)):
            n, w = NUM_WORDS[m.group(1)], m.group(2)
            if n >= 2 and w not in _FORM_PLURAL:
                continue  # "two building" -> ignore ill-formed
            votes.setdefault(_FORM_IDX[w], Counter())[n] += 1
    out = {}
    for g, cnt in votes.items():
        n, k = cnt.most_common(1)[0]
        if k >= 2 and len(cnt) == 1:  # at least two captions agree and none disagrees
            out[g] = n
    return out


def mentioned(caps: List[str]) -> set:
    found = set()
    for c in caps:
        t = " " + norm_text(c) + " "
        for a, i in _OBJ_ALTS:
            if f" {a} " in t:
                found.add(i)
    return found


def relations_from_captions(caps: List[str]):
    rels = Counter()
    for c in caps:
        for m in _REL_RE.finditer(norm_text(c)):
            x, rel, y = _OBJ_IDX[m.group(1)], m.group(2), _OBJ_IDX[m.group(3)]
            if GROUP_OF[x] != GROUP_OF[y]:   # "boats near ships": same object group, no relation
                rels[(x, rel, y)] += 1
    return rels


def q(image, qtype, question, answer, source, split):
    return {"image": image, "type": qtype, "question": question, "answer": answer, "source": source,
            "generated": source != "rsivqa", "split": split}


def rsicd_questions(split: str, rng: random.Random) -> List[dict]:
    """`rng` (main stream) makes exactly the draws it made before synonym groups existed (on the literal
    OBJECTS mentions); every synonym-related draw uses its own stream `srng` (see module docstring)."""
    items = read_split(split)
    srng = random.Random(f"{SEED}:synonyms:{split}")
    out = []
    for it in items:
        im = it.image
        src = "generated:rsicd-captions"
        if it.label:
            out.append(q(im, "scene", rng.choice(["what type of scene is this?", "what kind of area is shown?",
                                                   "what is the scene category of this image?"]),
                         it.label.lower(), "generated:rsicd-labels", split))
        men = mentioned(it.captions)            # literal OBJECTS words (drives the main-stream draws)
        gmen = mentioned_groups(it.captions)    # synonym groups named by any form / alias
        free = [i for i in range(len(OBJECTS)) if GROUP_OF[i] not in gmen]   # valid negatives

        def negative(draw: int) -> int:
            return draw if GROUP_OF[draw] not in gmen else srng.choice(free)

        if men:
            o = rng.choice(sorted(men))
            sg, pl = pick_form(GROUP_OF[o], srng)
            out.append(q(im, "presence", rng.choice([f"is there a {sg} in this image?", f"are there any {pl}?"]),
                         "yes", src, split))
        elif gmen:  # named only by a mention-only alias (e.g. "aircraft", "sea")
            sg, pl = pick_form(srng.choice(sorted(gmen)), srng)
            out.append(q(im, "presence", srng.choice([f"is there a {sg} in this image?", f"are there any {pl}?"]),
                         "yes", src, split))
        absent = [i for i in range(len(OBJECTS)) if i not in men]
        o = negative(rng.choice(absent))
        sg, pl = pick_form(GROUP_OF[o], srng)
        out.append(q(im, "presence", rng.choice([f"is there a {sg} in this image?", f"are there any {pl}?"]),
                     "no", src, split))
        for g, n in sorted(counts_by_group(it.captions).items()):
            out.append(q(im, "count", f"how many {pick_form(g, srng)[1]} are there?", str(n), src, split))
        rels = relations_from_captions(it.captions)
        if rels:
            (x, rel, y), _ = rels.most_common(1)[0]
            xs = OBJECTS[x][1] if rel in ("between",) else OBJECTS[x][0]
            out.append(q(im, "relation", f"what is {rel} the {OBJECTS[x][0]}?", OBJECTS[y][0], src, split))
            if rng.random() < 0.5:
                out.append(q(im, "relation", f"is the {xs} {rel} a {OBJECTS[y][0]}?", "yes", src, split))
            else:
                cand = [i for i in range(len(OBJECTS)) if i not in men]
                z = negative(rng.choice(cand))
                out.append(q(im, "relation", f"is the {xs} {rel} a {pick_form(GROUP_OF[z], srng)[0]}?", "no",
                             src, split))
    return out


# Scene-anchored presence (generated:rsicd-scene-labels). Caption-derived presence alone is too weak a signal:
# the v1 model answered "no" to "are there any ships?" on every val Port image. The RSICD scene label gives
# strong labels for a few objects: SCENE_HAS[label] is an object that every image of that scene shows (a port
# has boats, an airport planes, a parking lot cars ...); SCENE_LACKS[object] lists scenes where that object is
# (nearly) never seen, giving "no" questions. Conservative on purpose: water scenes never get "no boats", and an
# image whose captions mention the object never gets a "no" about it.
SCENE_HAS = {"Port": "boat", "Airport": "plane", "Parking": "car", "StorageTanks": "storage tank",
             "BaseballField": "baseball field", "Beach": "beach", "Bridge": "bridge", "Viaduct": "viaduct",
             "Church": "church", "Pond": "pond", "River": "river", "Forest": "tree", "Playground": "playground",
             "Desert": "desert", "Mountain": "mountain", "Meadow": "meadow", "Farmland": "farmland",
             "Stadium": "stadium", "DenseResidential": "building", "RailwayStation": "railway"}
_INLAND = ["Desert", "Forest", "Farmland", "Mountain", "Meadow", "BareLand", "Airport", "Parking", "Playground",
           "BaseballField", "Stadium", "playfields", "School", "Church", "SparseResidential", "MediumResidential",
           "DenseResidential", "Square", "RailwayStation"]
SCENE_LACKS = {"boat": _INLAND,
               "plane": [lab for lab in sorted(set(SCENE_HAS) | set(_INLAND) | {"Port", "Resort", "Park",
                                                                                 "Industrial", "Commercial",
                                                                                 "Center"}) if lab != "Airport"],
               "storage tank": ["Desert", "Forest", "Mountain", "Meadow", "Beach", "Pond", "River", "Church",
                                "Playground", "BaseballField", "Stadium", "playfields", "SparseResidential",
                                "DenseResidential", "MediumResidential", "School", "Square", "Park", "Resort"],
               "car": ["Desert", "Forest", "Mountain", "Meadow", "Pond", "BareLand"],
               "desert": ["Port", "Beach", "Pond", "River", "Forest", "DenseResidential", "Parking", "Commercial"]}


def scene_presence_questions(split: str) -> List[dict]:
    """Per image: a "yes" about its scene's anchored object (SCENE_HAS) and, with probability 1/2, a "no" about
    an object its scene lacks (SCENE_LACKS) that no caption names. Own random stream, so every other generated
    question is unchanged."""
    rng = random.Random(f"{SEED}:scene-presence:{split}")
    sg_idx = {sg: i for i, (sg, _) in enumerate(OBJECTS)}
    src, out = "generated:rsicd-scene-labels", []

    def ask(im, obj, answer):
        sg, pl = pick_form(GROUP_OF[sg_idx[obj]], rng)
        out.append({**q(im, "presence", rng.choice([f"is there a {sg} in this image?", f"are there any {pl}?"]),
                        answer, src, split), "object": obj})

    for it in read_split(split):
        if not it.label:
            continue
        gmen = mentioned_groups(it.captions)
        if it.label in SCENE_HAS:
            ask(it.image, SCENE_HAS[it.label], "yes")
        lacks = [o for o, scenes in SCENE_LACKS.items() if it.label in scenes and GROUP_OF[sg_idx[o]] not in gmen]
        if lacks and rng.random() < 0.5:
            ask(it.image, rng.choice(lacks), "no")
    return out


def theme_questions(split: str) -> List[dict]:
    names = {Path(it.image).name: it.image for it in read_split(split)}
    out = []
    for line in (paths.shared_dir() / "data" / "rsivqa" / "rsicd_theme.txt").read_text().splitlines():
        if ":" not in line or "?" not in line:
            continue
        fn, rest = line.split(":", 1)
        ques, ans = rest.rsplit("?", 1)
        if fn.strip() in names:
            out.append(q(names[fn.strip()], "theme", ques.strip() + "?", ans.strip().lower(), "rsivqa", split))
    return out


# ------------------------------------------------------------------ box tiles (aerial-cars, DOTA)
TILE_CLASSES = {0: ("car", "cars"), 1: ("large vehicle", "large vehicles"), 2: ("ship", "ships"),
                3: ("harbor", "harbors")}


def tiles_for_record(rec, rng: random.Random, max_tiles: int = 9):
    """Square crops of the record's region (side S = max(224, short side / 3)), resized to 224."""
    x0, y0, x1, y1 = rec.region
    W, H = x1 - x0, y1 - y0
    S = int(max(224, min(W, H) // 3))
    cand = [(tx, ty) for ty in range(0, H - S + 1, S) for tx in range(0, W - S + 1, S)]
    rng.shuffle(cand)
    return [(tx, ty, S) for tx, ty in sorted(cand[:max_tiles])]


def tile_questions_and_pixels(rng: random.Random):
    from PIL import Image
    from ..detection.data import load_records, CLASSES  # noqa: F401  (same split as detection)
    out = {"train": ([], []), "val": ([], [])}
    for rec in load_records(("train", "val")):
        img = Image.open(rec.path).convert("RGB")
        src = "generated:aerial-cars-boxes" if not rec.name.startswith("P0706") else "generated:dota-boxes"
        for (tx, ty, S) in tiles_for_record(rec, rng):
            gx, gy = rec.region[0] + tx, rec.region[1] + ty
            crop = img.crop((gx, gy, gx + S, gy + S)).resize((224, 224), Image.BILINEAR)
            b = rec.boxes
            cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
            inside = (cx >= tx) & (cx < tx + S) & (cy >= ty) & (cy < ty + S)
            name = f"{'dota' if rec.name.startswith('P0706') else 'aerial-cars'}:{rec.path.name}#{gx},{gy},{S}"
            qs = []
            for c, (sg, pl) in TILE_CLASSES.items():
                n = int((rec.labels[inside] == c).sum())
                relevant = (c in (0, 1)) != rec.name.startswith("P0706")
                if not relevant and n == 0:
                    continue
                qs.append(q(name, "presence", f"is there a {sg} in this image?", "yes" if n else "no", src,
                            rec.split))
                if n or rng.random() < 0.5:
                    qs.append(q(name, "count", f"how many {pl} are there?", str(n) if n <= 20 else "more than 20",
                                src, rec.split))
            if qs:
                lst, pix = out[rec.split]
                for x in qs:
                    x["tile"] = len(pix)
                lst.extend(qs)
                pix.append(np.asarray(crop, dtype=np.uint8))
    return out


def cache_tile_features(pixels: Dict[str, list]) -> None:
    import torch
    from ..rslens.mobilenet import mobilenet_v2_from_tflite, normalize_uint8
    d = paths.cache_dir() / TILE_CACHE
    d.mkdir(parents=True, exist_ok=True)
    net = mobilenet_v2_from_tflite(str(paths.mobilenet_tflite())).features.eval()
    for split, pix in pixels.items():
        x = torch.from_numpy(np.stack(pix)).permute(0, 3, 1, 2).float()
        outs = []
        with torch.no_grad():
            for s in range(0, len(x), 32):
                outs.append(net(normalize_uint8(x[s:s + 32])).numpy().astype(np.float16))
        np.save(d / f"{split}.npy", np.concatenate(outs))
        print(f"tile features {split}: {len(x)} tiles")


def load_tile_features(split: str) -> np.ndarray:
    return np.load(paths.cache_dir() / TILE_CACHE / f"{split}.npy")


def read_jsonl(p: Path) -> List[dict]:
    with open(p, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def write_jsonl(p: Path, rows: List[dict]) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def load_tokenizer() -> CompactTokenizer:
    return CompactTokenizer.load(ClipBPE(paths.clip_tokenizer_json()), VOCAB_PATH)


def main() -> None:
    import torch
    torch.set_num_threads(1)
    rng = random.Random(SEED)
    gen = {s: rsicd_questions(s, rng) for s in ("train", "val")}
    for s in ("train", "val"):
        gen[s] += scene_presence_questions(s)
    tiles = tile_questions_and_pixels(rng)
    for s in ("train", "val"):
        gen[s] += tiles[s][0]
        write_jsonl(VQA_DIR / f"generated_{s}.jsonl", gen[s])
        th = theme_questions(s)
        write_jsonl(VQA_DIR / f"rsivqa_theme_{s}.jsonl", th)
        c = Counter(f"{x['type']}/{x['source']}" for x in gen[s])
        print(s, len(gen[s]), "generated", dict(sorted(c.items())), "| theme (published)", len(th))
    cache_tile_features({s: tiles[s][1] for s in ("train", "val")})
    # vocabulary: train captions + train questions/answers + instruction (never val text)
    corpus = [c for it in read_split("train") for c in it.captions]
    corpus += [x["question"] for x in gen["train"]] + [x["answer"] for x in gen["train"]]
    corpus += [x["question"] for x in theme_questions("train")] + [x["answer"] for x in theme_questions("train")]
    corpus += [CAPTION_INSTRUCTION] * MIN_COUNT + [str(i) for i in range(0, 21)] * MIN_COUNT
    tok = CompactTokenizer.build(ClipBPE(paths.clip_tokenizer_json()), corpus, MAX_LENGTH, MIN_COUNT)
    tok.save(VOCAB_PATH)
    print(f"vocab: {tok.vocab_size} ids -> {paths.rel(VOCAB_PATH)}")


if __name__ == "__main__":
    main()
