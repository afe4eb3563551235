/** Restaurants with the dishes they sell and what those cost: generated orders stay believable. */
export interface MenuItem {
  readonly item: string
  /** Price in cents. */
  readonly price: number
}

export const menus: Readonly<Record<string, ReadonlyArray<MenuItem>>> = {
  "Burger Junction": [
    { item: "Veg Burger", price: 22000 },
    { item: "Chicken Burger", price: 26000 },
    { item: "Loaded Fries", price: 14950 },
    { item: "Chocolate Shake", price: 17500 }
  ],
  "Spice Route": [
    { item: "Paneer Butter Masala", price: 34050 },
    { item: "Dal Makhani", price: 27900 },
    { item: "Garlic Naan", price: 6500 },
    { item: "Chicken Tikka", price: 38900 }
  ],
  "Pizza Palace": [
    { item: "Margherita Pizza", price: 49900 },
    { item: "Farmhouse Pizza", price: 59900 },
    { item: "Garlic Bread", price: 15900 }
  ],
  "Sushi Corner": [
    { item: "Salmon Nigiri Set", price: 72500 },
    { item: "California Roll", price: 54000 },
    { item: "Miso Soup", price: 18000 }
  ],
  "Dosa Darbar": [
    { item: "Masala Dosa", price: 12000 },
    { item: "Idli Sambar", price: 9000 },
    { item: "Filter Coffee", price: 4500 }
  ],
  "Biryani House": [
    { item: "Hyderabadi Biryani", price: 41000 },
    { item: "Veg Biryani", price: 32000 },
    { item: "Raita", price: 6000 }
  ],
  "Noodle Bar": [
    { item: "Hakka Noodles", price: 18525 },
    { item: "Chilli Chicken", price: 28000 },
    { item: "Spring Rolls", price: 15000 }
  ],
  "Green Bowl": [
    { item: "Quinoa Salad", price: 28999 },
    { item: "Avocado Toast", price: 24500 },
    { item: "Cold-Pressed Juice", price: 16000 }
  ]
}

const firstNames = ["John", "Priya", "Arjun", "Sara", "Rahul", "Ananya", "Michael", "Fatima", "Wei", "Emily", "Kenji", "Lucia", "Omar", "Zara", "Ivan", "Maya"]
const lastNames = ["Doe", "Sharma", "Mehta", "Khan", "Verma", "Iyer", "Brown", "Ali", "Chen", "Clark", "Sato", "Garcia", "Haddad", "Nair", "Petrov", "Singh"]

/** The reference design's statuses, weighted the way a live platform skews (most orders are fresh). */
export const statusWeights: ReadonlyArray<readonly [string, number]> = [
  ["PLACED", 0.5],
  ["PREPARING", 0.25],
  ["DELIVERED", 0.2],
  ["CANCELLED", 0.05]
]

export const customerNames: ReadonlyArray<string> = firstNames.flatMap((f) => lastNames.map((l) => `${f} ${l}`))
