"""StoryWorld's lexicon: the word lists every story draws from, and which list each template slot uses.

The fact-bearing lists (names, objects, colours, sizes, places, animals) are disjoint from each other and
from every other word of the grammar (checked in `templates.py` when the templates compile), so each such
word in a story is a reference to one planted fact. Gendered pronouns always denote the main character M.
"""
from __future__ import annotations

GIRL_NAMES = (
    "Lily", "Sue", "Anna", "Mia", "Lucy", "Emma", "Sara", "Amy", "Ella", "Kate",
    "Zoe", "Jane", "Molly", "Ruby", "Ivy", "Nora", "Grace", "Alice", "Ellie", "Sophie",
    "Hannah", "Julia", "Clara", "Maya", "Lena", "Rosie", "Tina", "Bella", "Nina", "Olivia",
)
BOY_NAMES = (
    "Tom", "Ben", "Tim", "Max", "Sam", "Jack", "Leo", "Jake", "Bob", "Joe",
    "Dan", "Ted", "Finn", "Owen", "Luke", "Ryan", "Adam", "Eli", "Noah", "Mark",
    "Paul", "Jim", "Ned", "Pete", "Mike", "Nick", "Carl", "Hugo", "Oscar", "Ethan",
)
GENDERS = ("female", "male")
KID_NOUN = {"female": "girl", "male": "boy"}
PRONOUN = {  # attr -> gender -> word
    "subj": {"female": "she", "male": "he"},
    "obj": {"female": "her", "male": "him"},
    "poss": {"female": "her", "male": "his"},
}
OBJECTS = (
    "ball", "doll", "kite", "hat", "car", "boat", "drum", "book", "bike", "balloon",
    "truck", "robot", "umbrella", "airplane",
)
COLOURS = ("red", "blue", "green", "yellow", "pink", "purple", "orange", "white", "black", "brown")
SIZES = ("big", "small", "tiny", "huge")
PLACES = {  # place -> its preposition ("in the park", "at the beach", "on the farm")
    "park": "in", "garden": "in", "forest": "in", "yard": "in", "woods": "in",
    "meadow": "in", "beach": "at", "lake": "at", "zoo": "at", "farm": "on",
}
ANIMALS = (
    "dog", "cat", "bird", "bunny", "frog", "duck", "puppy", "kitten", "owl", "elephant",
    "turtle", "squirrel", "mouse", "fox", "bear", "pig",
)
FREE_CLASSES: dict[str, tuple[str, ...]] = {
    "feel": ("happy", "sad", "scared", "excited", "angry", "tired", "surprised", "proud",
             "upset", "sleepy", "worried", "glad", "hungry", "calm"),
    "badfeel": ("sad", "scared", "angry", "upset", "worried"),
    "cadj": ("little", "kind", "curious", "brave", "shy", "sweet", "smart", "friendly",
             "funny", "quiet", "young", "eager", "clever", "gentle", "happy"),
    "aadj": ("little", "cute", "fluffy", "friendly", "funny", "soft", "old", "playful"),
    "thing": ("tree", "rock", "bush", "bench", "log", "chair", "table", "fence", "hill",
              "flower", "leaf", "oak"),
    "food": ("cake", "apple", "cookie", "sandwich", "banana", "carrot", "pie", "egg",
             "muffin", "peach"),
    "adv": ("happily", "quickly", "slowly", "loudly", "gladly", "quietly"),
    "ivp": ("ran", "jumped", "laughed", "smiled", "danced", "sang", "skipped", "clapped",
            "hopped", "giggled", "played", "waved"),
    "weather": ("sunny", "nice", "windy", "cold", "warm", "rainy", "bright", "beautiful"),
    "parent": ("mom", "dad", "grandma", "grandpa"),
}

# Which word list a role slot draws from, and the agreement features of its words.
PERSON_ATTRS = ("name", "kid", "subj", "obj", "poss")
ROLE_ATTRS = {
    "M": PERSON_ATTRS, "F": ("name", "kid"), "O": ("noun", "colour", "size"),
    "P": ("noun", "prep"), "A": ("noun",),
}
# Slot name -> the fact kind it references (None: no planted fact behind it).
SLOT_KIND = {
    "M.name": "name", "F.name": "name", "M.subj": "pronoun", "M.obj": "pronoun",
    "M.poss": "pronoun", "O.colour": "colour", "O.size": "size", "O.noun": "object",
    "P.noun": "place", "A.noun": "animal",
}


def slot_lexicon(slot: str) -> dict[str, dict[str, str]]:
    """Words a slot accepts (full lexicon) -> their agreement features."""
    if "." not in slot:
        return {w: {} for w in FREE_CLASSES[slot]}
    role, attr = slot.split(".")
    if attr == "name":
        return {**{n: {"g": "female"} for n in GIRL_NAMES}, **{n: {"g": "male"} for n in BOY_NAMES}}
    if attr == "kid":
        return {w: {"g": g} for g, w in KID_NOUN.items()}
    if attr in PRONOUN:
        return {w: {"g": g} for g, w in PRONOUN[attr].items()}
    if role == "O":
        return {w: {} for w in {"noun": OBJECTS, "colour": COLOURS, "size": SIZES}[attr]}
    if role == "P":
        if attr == "noun":
            return {p: {"prep": prep} for p, prep in PLACES.items()}
        return {prep: {"prep": prep} for prep in set(PLACES.values())}
    if role == "A":
        return {w: {} for w in ANIMALS}
    raise KeyError(slot)
