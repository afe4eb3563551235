import { customerNames, menus, statusWeights } from "./menu.ts"

export interface GeneratedOrder {
  readonly customer_name: string
  readonly restaurant_name: string
  readonly item: string
  /** Cents: the item's price times a quantity of 1 to 3. */
  readonly amount: number
  readonly order_status: string
}

/** mulberry32: small, fast and seedable, so a generated load can be replayed exactly. */
export const seededRandom = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const restaurants = Object.keys(menus)

export const makeOrderGenerator = (seed: number) => {
  const random = seededRandom(seed)
  const pick = <A>(values: ReadonlyArray<A>) => values[Math.floor(random() * values.length)]!
  const status = () => {
    let r = random()
    for (const [name, weight] of statusWeights) {
      if ((r -= weight) < 0) return name
    }
    return statusWeights[0]![0]
  }
  return (): GeneratedOrder => {
    const restaurant = pick(restaurants)
    const dish = pick(menus[restaurant]!)
    const quantity = 1 + Math.floor(random() * 3)
    return {
      customer_name: pick(customerNames),
      restaurant_name: restaurant,
      item: dish.item,
      amount: dish.price * quantity,
      order_status: status()
    }
  }
}
